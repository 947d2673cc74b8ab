/*
 * Column mapping and topic routing for outbox rows. The relay asks pgoutput
 * for text mode, where a jsonb payload is jsonb's canonical text and a bytea
 * one is bytea's text output, decoded here into its bytes.
 */
#include "outbox.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hex.h"

static const char *const column_names[OUTBOX_NCOLS] = {
    "id", "aggregate_type", "aggregate_id", "event_type", "payload",
};

/* Headers every event gets from the relay itself: a column cannot take them. */
static const char *const reserved_headers[] = {
    "id",        "event_type",  "aggregate_type", "lsn",
    "commit_ts", "traceparent", "replayed",       "replay_request", /* cdc-relay reemit's */
};

const char *outbox_column_name(enum outbox_col col)
{
    return column_names[col];
}

void outbox_columns_default(struct outbox_columns *c)
{
    memset(c, 0, sizeof(*c));
    for (int i = 0; i < OUTBOX_NCOLS; i++)
        c->role[i] = column_names[i];
    c->timestamp = "created_at";
    c->published = "published_at";
    c->traceparent = "traceparent";
}

/* Drops blanks around [s, end), terminates it there, returns its start. */
static char *trim(char *s, char *end)
{
    while (s < end && (*s == ' ' || *s == '\t'))
        s++;
    while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *end = '\0';
    return s;
}

static bool header_reserved(const char *name)
{
    for (size_t i = 0; i < sizeof(reserved_headers) / sizeof(reserved_headers[0]); i++)
        if (strcmp(name, reserved_headers[i]) == 0)
            return true;
    return false;
}

bool outbox_header_columns_parse(char *text, struct outbox_columns *c, const char **why)
{
    char *p = text;
    bool last = false;

    c->nheaders = 0;
    while (!last) {
        char *comma = strchr(p, ','), *end = comma != NULL ? comma : p + strlen(p);
        char *eq = memchr(p, '=', (size_t)(end - p));
        const char *col, *hdr;

        last = comma == NULL;
        col = trim(p, eq != NULL ? eq : end);
        hdr = eq != NULL ? trim(eq + 1, end) : col;
        p = end + 1;
        if (*col == '\0' || *hdr == '\0') {
            *why = "an empty column or header name (the form is col[=header],...)";
            return false;
        }
        if (c->nheaders == OUTBOX_MAX_HEADERS) {
            *why = "more than 16 header columns";
            return false;
        }
        if (header_reserved(hdr)) {
            *why = "a header the relay sets itself (id, event_type, aggregate_type, lsn, "
                   "commit_ts, traceparent, replayed, replay_request): give the column another "
                   "header name (col=name)";
            return false;
        }
        for (size_t i = 0; i < c->nheaders; i++) {
            if (strcmp(c->headers[i].header, hdr) == 0) {
                *why = "the same header name twice";
                return false;
            }
        }
        c->headers[c->nheaders].column = col;
        c->headers[c->nheaders].header = hdr;
        c->nheaders++;
    }
    return true;
}

const char *outbox_strerror(enum outbox_status status)
{
    switch (status) {
    case OUTBOX_OK:
        return "ok";
    case OUTBOX_EMISSING_COLUMN:
        return "outbox table lacks a required column";
    case OUTBOX_ENULL:
        return "the id, aggregate type (route), aggregate id (key) or event type column is null";
    case OUTBOX_EBINARY:
        return "column not in text form";
    case OUTBOX_ESHORT:
        return "tuple has fewer columns than the relation";
    case OUTBOX_EBYTEA:
        return "a bytea column is not in bytea's text output form";
    }
    return "unknown outbox error";
}

enum outbox_status outbox_layout_init(struct outbox_layout *layout,
                                      const struct outbox_columns *cols,
                                      const struct relcache_rel *rel, const char **missing)
{
    memset(layout, 0, sizeof(*layout));
    layout->relid = rel->relid;
    layout->cols = cols;
    for (int c = 0; c < OUTBOX_NCOLS; c++) {
        int i = relcache_column_index(rel, cols->role[c]);

        if (i < 0) {
            *missing = cols->role[c];
            return OUTBOX_EMISSING_COLUMN;
        }
        layout->index[c] = i;
        layout->bytea[c] = rel->typoids[i] == OUTBOX_BYTEA_OID;
    }
    layout->traceparent =
        cols->traceparent != NULL ? relcache_column_index(rel, cols->traceparent) : -1;
    if (layout->traceparent < 0 && cols->traceparent != NULL && cols->traceparent_required) {
        *missing = cols->traceparent;
        return OUTBOX_EMISSING_COLUMN;
    }
    layout->timestamp = cols->timestamp != NULL ? relcache_column_index(rel, cols->timestamp) : -1;
    if (layout->timestamp >= 0) {
        switch (rel->typoids[layout->timestamp]) {
        case OUTBOX_TIMESTAMPTZ_OID:
        case OUTBOX_TIMESTAMP_OID:
            layout->timestamp_kind = OUTBOX_TS_TIME;
            break;
        case OUTBOX_INT8_OID:
            layout->timestamp_kind = OUTBOX_TS_EPOCH_MS;
            break;
        default:
            layout->timestamp_kind = OUTBOX_TS_OTHER;
            break;
        }
    }
    for (size_t h = 0; h < cols->nheaders; h++) {
        int i = relcache_column_index(rel, cols->headers[h].column);

        if (i < 0) {
            *missing = cols->headers[h].column;
            return OUTBOX_EMISSING_COLUMN;
        }
        layout->header_index[h] = i;
        layout->header_bytea[h] = rel->typoids[i] == OUTBOX_BYTEA_OID;
    }
    layout->nheaders = cols->nheaders;
    return OUTBOX_OK;
}

static enum outbox_status take(const struct pgout_tuple *tuple, int index, bool nullable,
                               struct pgout_str *out)
{
    const struct pgout_col *col;

    out->ptr = NULL;
    out->len = 0;
    if (index >= tuple->ncols)
        return OUTBOX_ESHORT;
    col = &tuple->cols[index];
    switch (col->kind) {
    case PGOUT_COL_TEXT:
        out->ptr = (const char *)col->data;
        out->len = col->len;
        return OUTBOX_OK;
    case PGOUT_COL_NULL:
        return nullable ? OUTBOX_OK : OUTBOX_ENULL;
    default:
        return OUTBOX_EBINARY;
    }
}

enum outbox_status outbox_event_from_tuple(const struct outbox_layout *layout,
                                           const struct pgout_tuple *tuple, struct outbox_event *ev)
{
    struct pgout_str *dest[OUTBOX_NCOLS] = {&ev->id, &ev->aggregate_type, &ev->aggregate_id,
                                            &ev->event_type, &ev->payload};
    enum outbox_status first = OUTBOX_OK, st;

    /* Every column is taken even after an error, so a bad row can still be
     * described (and dead-lettered) with what it has. */
    for (int c = 0; c < OUTBOX_NCOLS; c++) {
        st = take(tuple, layout->index[c], c == OUTBOX_COL_PAYLOAD, dest[c]);
        if (st != OUTBOX_OK && first == OUTBOX_OK)
            first = st;
    }
    ev->traceparent.ptr = NULL;
    ev->traceparent.len = 0;
    if (layout->traceparent >= 0) {
        st = take(tuple, layout->traceparent, true, &ev->traceparent);
        if (st != OUTBOX_OK && first == OUTBOX_OK)
            first = st;
    }
    ev->nheaders = layout->nheaders;
    for (size_t h = 0; h < layout->nheaders; h++) {
        ev->headers[h].name = layout->cols->headers[h].header;
        st = take(tuple, layout->header_index[h], true, &ev->headers[h].value);
        if (st != OUTBOX_OK && first == OUTBOX_OK)
            first = st;
    }
    return first;
}

size_t outbox_event_decode_size(const struct outbox_layout *layout, const struct outbox_event *ev)
{
    size_t n = 0;

    if (layout->bytea[OUTBOX_COL_PAYLOAD] && ev->payload.ptr != NULL)
        n += ev->payload.len;
    for (size_t h = 0; h < ev->nheaders && h < layout->nheaders; h++)
        if (layout->header_bytea[h] && ev->headers[h].value.ptr != NULL)
            n += ev->headers[h].value.len;
    return n;
}

long outbox_bytea_decode(const char *src, size_t len, uint8_t *out)
{
    size_t n = 0;

    /* Hex format (bytea_output = hex, the default since 9.0): "\x" then two
     * hex digits a byte. byteaout never writes blanks between them. */
    if (len >= 2 && src[0] == '\\' && src[1] == 'x') {
        if ((len - 2) % 2 != 0)
            return -1;
        for (size_t i = 2; i < len; i += 2) {
            int hi = hex_value(src[i]), lo = hex_value(src[i + 1]);

            if (hi < 0 || lo < 0)
                return -1;
            out[n++] = (uint8_t)(hi << 4 | lo);
        }
        return (long)n;
    }
    /* Escape format: a backslash is "\\", any other byte byteaout did not
     * print as itself is "\ooo" (three octal digits). */
    for (size_t i = 0; i < len;) {
        if (src[i] != '\\') {
            out[n++] = (uint8_t)src[i++];
            continue;
        }
        if (i + 1 < len && src[i + 1] == '\\') {
            out[n++] = '\\';
            i += 2;
            continue;
        }
        if (i + 3 < len && src[i + 1] >= '0' && src[i + 1] <= '3' && src[i + 2] >= '0' &&
            src[i + 2] <= '7' && src[i + 3] >= '0' && src[i + 3] <= '7') {
            out[n++] =
                (uint8_t)((src[i + 1] - '0') << 6 | (src[i + 2] - '0') << 3 | (src[i + 3] - '0'));
            i += 4;
            continue;
        }
        return -1;
    }
    return (long)n;
}

/* Decodes a bytea view into buf at *used and points the view there. */
static bool decode_into(struct pgout_str *v, uint8_t *buf, size_t buflen, size_t *used)
{
    long n;

    if (v->ptr == NULL)
        return true;
    if (buflen - *used < v->len)
        return false;
    n = outbox_bytea_decode(v->ptr, v->len, buf + *used);
    if (n < 0)
        return false;
    v->ptr = (const char *)buf + *used;
    v->len = (size_t)n;
    *used += (size_t)n;
    return true;
}

enum outbox_status outbox_event_decode(const struct outbox_layout *layout, struct outbox_event *ev,
                                       uint8_t *buf, size_t buflen)
{
    size_t used = 0;

    if (layout->bytea[OUTBOX_COL_PAYLOAD] && !decode_into(&ev->payload, buf, buflen, &used))
        return OUTBOX_EBYTEA;
    for (size_t h = 0; h < ev->nheaders && h < layout->nheaders; h++)
        if (layout->header_bytea[h] && !decode_into(&ev->headers[h].value, buf, buflen, &used))
            return OUTBOX_EBYTEA;
    if (ev->traceparent.ptr != NULL)
        ev->traceparent = outbox_traceparent_extract(ev->traceparent);
    return OUTBOX_OK;
}

static bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f';
}

static struct pgout_str trimmed(const char *p, size_t len)
{
    struct pgout_str v = {NULL, 0};

    while (len > 0 && blank(*p)) {
        p++;
        len--;
    }
    while (len > 0 && blank(p[len - 1]))
        len--;
    if (len > 0) {
        v.ptr = p;
        v.len = len;
    }
    return v;
}

struct pgout_str outbox_traceparent_extract(struct pgout_str col)
{
    static const char key[] = "traceparent";
    const char *p, *end;

    if (col.ptr == NULL)
        return col;
    p = col.ptr;
    end = col.ptr + col.len;
    /* java.util.Properties.store(): "#comment" lines, then "key=value" lines
     * (':' may separate too). A W3C traceparent's characters ([0-9a-f-])
     * need no escaping there. */
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p)), *eol = nl != NULL ? nl : end;
        struct pgout_str line = trimmed(p, (size_t)(eol - p));

        if (line.ptr != NULL && line.len > sizeof(key) - 1 &&
            memcmp(line.ptr, key, sizeof(key) - 1) == 0) {
            const char *v = line.ptr + sizeof(key) - 1, *lend = line.ptr + line.len;

            while (v < lend && blank(*v))
                v++;
            if (v < lend && (*v == '=' || *v == ':'))
                return trimmed(v + 1, (size_t)(lend - v - 1));
        }
        p = eol + (nl != NULL ? 1 : 0);
    }
    /* No such line: the column is the traceparent itself. */
    return trimmed(col.ptr, col.len);
}

bool outbox_topic_valid(const char *name, size_t len)
{
    if (len == 0 || len > 249)
        return false;
    if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

static const char tmpl_route[] = "${aggregate_type}";
static const char tmpl_routed_by[] = "${routedByValue}"; /* Debezium's name for it */
static const char tmpl_type[] = "${event_type}";

bool outbox_topic_uses_event_type(const char *tmpl)
{
    return strstr(tmpl, tmpl_type) != NULL;
}

bool outbox_topic(const char *tmpl, const struct outbox_event *ev, char *buf, size_t buflen)
{
    size_t n = 0;

    while (*tmpl != '\0') {
        const struct pgout_str *sub = NULL;
        size_t skip = 1;

        if (strncmp(tmpl, tmpl_route, sizeof(tmpl_route) - 1) == 0) {
            sub = &ev->aggregate_type;
            skip = sizeof(tmpl_route) - 1;
        } else if (strncmp(tmpl, tmpl_routed_by, sizeof(tmpl_routed_by) - 1) == 0) {
            sub = &ev->aggregate_type;
            skip = sizeof(tmpl_routed_by) - 1;
        } else if (strncmp(tmpl, tmpl_type, sizeof(tmpl_type) - 1) == 0) {
            sub = &ev->event_type;
            skip = sizeof(tmpl_type) - 1;
        }
        if (sub != NULL) {
            if (n + sub->len >= buflen)
                return false;
            memcpy(buf + n, sub->ptr, sub->len);
            n += sub->len;
        } else {
            if (n + 1 >= buflen)
                return false;
            buf[n++] = *tmpl;
        }
        tmpl += skip;
    }
    buf[n] = '\0';
    return outbox_topic_valid(buf, n);
}

size_t outbox_format_timestamp(int64_t pg_us, char *buf, size_t buflen)
{
    /* 946684800 s = 10957 days between the Unix and PostgreSQL epochs. */
    int64_t unix_us = pg_us + INT64_C(946684800000000);
    int64_t secs = unix_us / 1000000;
    int64_t frac = unix_us % 1000000;
    time_t tt;
    struct tm tm;
    size_t n;

    if (frac < 0) {
        frac += 1000000;
        secs -= 1;
    }
    tt = (time_t)secs;
    if (buflen < OUTBOX_TS_LEN + 1 || gmtime_r(&tt, &tm) == NULL) {
        if (buflen > 0)
            buf[0] = '\0';
        return 0;
    }
    n = strftime(buf, buflen, "%Y-%m-%dT%H:%M:%S", &tm);
    n += (size_t)snprintf(buf + n, buflen - n, ".%06dZ", (int)frac);
    return n < buflen ? n : buflen - 1;
}
