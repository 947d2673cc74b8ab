/*
 * Column mapping and topic routing for outbox rows. Text columns only: the
 * relay asks pgoutput for text mode, where payload is jsonb's canonical text.
 */
#include "outbox.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static const char *const column_names[OUTBOX_NCOLS] = {
    "id", "aggregate_type", "aggregate_id", "event_type", "payload",
};

const char *outbox_column_name(enum outbox_col col)
{
    return column_names[col];
}

const char *outbox_strerror(enum outbox_status status)
{
    switch (status) {
    case OUTBOX_OK:
        return "ok";
    case OUTBOX_EMISSING_COLUMN:
        return "outbox table lacks a required column";
    case OUTBOX_ENULL:
        return "id, aggregate_type, aggregate_id or event_type is null";
    case OUTBOX_EBINARY:
        return "column not in text form";
    case OUTBOX_ESHORT:
        return "tuple has fewer columns than the relation";
    }
    return "unknown outbox error";
}

enum outbox_status outbox_layout_init(struct outbox_layout *layout, const struct relcache_rel *rel,
                                      const char **missing)
{
    layout->relid = rel->relid;
    for (int c = 0; c < OUTBOX_NCOLS; c++) {
        layout->index[c] = relcache_column_index(rel, column_names[c]);
        if (layout->index[c] < 0) {
            *missing = column_names[c];
            return OUTBOX_EMISSING_COLUMN;
        }
    }
    return OUTBOX_OK;
}

static enum outbox_status take(const struct pgout_tuple *tuple, int index, bool nullable,
                               struct pgout_str *out)
{
    const struct pgout_col *col;

    if (index >= tuple->ncols)
        return OUTBOX_ESHORT;
    col = &tuple->cols[index];
    switch (col->kind) {
    case PGOUT_COL_TEXT:
        out->ptr = (const char *)col->data;
        out->len = col->len;
        return OUTBOX_OK;
    case PGOUT_COL_NULL:
        out->ptr = NULL;
        out->len = 0;
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
    enum outbox_status first = OUTBOX_OK;

    /* Every column is taken even after an error, so a bad row can still be
     * described (and dead-lettered) with what it has. */
    for (int c = 0; c < OUTBOX_NCOLS; c++) {
        enum outbox_status st = take(tuple, layout->index[c], c == OUTBOX_COL_PAYLOAD, dest[c]);
        if (st != OUTBOX_OK && first == OUTBOX_OK)
            first = st;
    }
    return first;
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

bool outbox_topic(const char *tmpl, const struct outbox_event *ev, char *buf, size_t buflen)
{
    static const char at[] = "${aggregate_type}";
    static const char et[] = "${event_type}";
    size_t n = 0;

    while (*tmpl != '\0') {
        const struct pgout_str *sub = NULL;
        size_t skip = 1;

        if (strncmp(tmpl, at, sizeof(at) - 1) == 0) {
            sub = &ev->aggregate_type;
            skip = sizeof(at) - 1;
        } else if (strncmp(tmpl, et, sizeof(et) - 1) == 0) {
            sub = &ev->event_type;
            skip = sizeof(et) - 1;
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
