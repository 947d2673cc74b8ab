/*
 * SQL text for the polling relay. The table and column names come from
 * options, so they are always quoted as identifiers, never pasted; values
 * travel as parameters.
 */
#include "poll_sql.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

bool poll_sql_quote_ident(const char *name, char *buf, size_t buflen)
{
    size_t n = 0;

    if (*name == '\0' || buflen < 3)
        return false;
    buf[n++] = '"';
    for (const char *p = name; *p != '\0'; p++) {
        size_t need = *p == '"' ? 2 : 1;

        if (n + need + 2 > buflen) /* room for the closing quote and NUL */
            return false;
        if (*p == '"')
            buf[n++] = '"';
        buf[n++] = *p;
    }
    buf[n++] = '"';
    buf[n] = '\0';
    return true;
}

bool poll_sql_qualified(const char *schema, const char *table, char *buf, size_t buflen)
{
    char s[256], t[256];
    int n;

    if (!poll_sql_quote_ident(schema, s, sizeof(s)) || !poll_sql_quote_ident(table, t, sizeof(t)))
        return false;
    n = snprintf(buf, buflen, "%s.%s", s, t);
    return n > 0 && (size_t)n < buflen;
}

/* Appends to buf at *n; false when it does not fit. */
static bool append(char *buf, size_t buflen, size_t *n, const char *s)
{
    size_t len = strlen(s);

    if (*n + len + 1 > buflen)
        return false;
    memcpy(buf + *n, s, len + 1);
    *n += len;
    return true;
}

/* Appends the quoted column name, then suffix. */
static bool append_col(char *buf, size_t buflen, size_t *n, const char *col, const char *suffix)
{
    char q[260];

    return poll_sql_quote_ident(col, q, sizeof(q)) && append(buf, buflen, n, q) &&
           append(buf, buflen, n, suffix);
}

bool poll_sql_ts_us(const char *quoted, enum outbox_ts_kind kind, bool commit_ts, char *buf,
                    size_t buflen)
{
    char t[320];
    int n;

    if (kind == OUTBOX_TS_EPOCH_MS)
        n = snprintf(t, sizeof(t), "pg_catalog.to_timestamp(%s / 1000.0)", quoted);
    else if (kind == OUTBOX_TS_TIME)
        n = snprintf(t, sizeof(t), "%s", quoted);
    else
        return false;
    if (n < 0 || (size_t)n >= sizeof(t))
        return false;
    n = snprintf(buf, buflen, "(extract(epoch FROM %s%s%s) * 1000000)::bigint",
                 commit_ts ? "coalesce(pg_catalog.pg_xact_commit_timestamp(xmin), " : "", t,
                 commit_ts ? ")" : "");
    return n > 0 && (size_t)n < buflen;
}

bool poll_sql_event_columns(const struct outbox_layout *layout, const char *alias,
                            const char *ts_us, char *buf, size_t buflen, size_t *n)
{
    const struct outbox_columns *cols = layout->cols;

    for (int c = 0; c < OUTBOX_NCOLS; c++)
        if (!append(buf, buflen, n, alias) ||
            !append_col(buf, buflen, n, cols->role[c], "::text, "))
            return false;
    if (!append(buf, buflen, n, ts_us) || !append(buf, buflen, n, ", "))
        return false;
    if (layout->traceparent >= 0 ? !append(buf, buflen, n, alias) ||
                                       !append_col(buf, buflen, n, cols->traceparent, "::text")
                                 : !append(buf, buflen, n, "NULL::text"))
        return false;
    for (size_t h = 0; h < layout->nheaders; h++)
        if (!append(buf, buflen, n, ", ") || !append(buf, buflen, n, alias) ||
            !append_col(buf, buflen, n, cols->headers[h].column, "::text"))
            return false;
    return true;
}

bool poll_sql_select(const char *schema, const char *table, const struct outbox_layout *layout,
                     bool commit_ts, char *buf, size_t buflen)
{
    const struct outbox_columns *cols = layout->cols;
    char rel[520], ts[260], ts_us[700], id[260], published[260], tail[1400];
    size_t n = 0;

    if (layout->timestamp < 0 || !poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !poll_sql_quote_ident(cols->timestamp, ts, sizeof(ts)) ||
        !poll_sql_ts_us(ts, layout->timestamp_kind, commit_ts, ts_us, sizeof(ts_us)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_ID], id, sizeof(id)) ||
        !poll_sql_quote_ident(cols->published, published, sizeof(published)))
        return false;
    if (buflen > 0)
        buf[0] = '\0';
    /*
     * Column order is enum poll_sql_col. Text forms are what pgoutput sends
     * in stream mode (uuid and jsonb output functions; bytea's output, which
     * the relay decodes in both modes), so both modes make the same message.
     * xmin is the inserting transaction: this relay's own UPDATE is not
     * visible to its SELECT, and a rolled-back mark leaves the original row
     * version. ORDER BY matches the partial index docs/relay.md recommends;
     * the default created_at is the inserting transaction's start time, so
     * this is start order, not commit order (docs/relay.md, "Polling mode").
     */
    if (!append(buf, buflen, &n, "SELECT ") ||
        !poll_sql_event_columns(layout, "", ts_us, buf, buflen, &n))
        return false;
    if (snprintf(tail, sizeof(tail),
                 " FROM %s WHERE %s IS NULL ORDER BY %s, %s LIMIT $1 FOR UPDATE SKIP LOCKED", rel,
                 published, ts, id) >= (int)sizeof(tail))
        return false;
    return append(buf, buflen, &n, tail);
}

bool poll_sql_mark(const char *schema, const char *table, const struct outbox_columns *cols,
                   char *buf, size_t buflen)
{
    char rel[520], id[260], published[260];
    int n;

    if (!poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_ID], id, sizeof(id)) ||
        !poll_sql_quote_ident(cols->published, published, sizeof(published)))
        return false;
    n = snprintf(buf, buflen, "UPDATE %s SET %s = pg_catalog.now() WHERE %s = ANY($1)", rel,
                 published, id);
    return n > 0 && (size_t)n < buflen;
}

bool poll_sql_range(const char *schema, const char *table, const struct outbox_layout *layout,
                    char *buf, size_t buflen)
{
    const struct outbox_columns *cols = layout->cols;
    char rel[520], ts[260], id[260], route[260], type[260], lo[320], hi[320];
    int n;

    if (layout->timestamp < 0 || !poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !poll_sql_quote_ident(cols->timestamp, ts, sizeof(ts)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_ID], id, sizeof(id)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_AGGREGATE_TYPE], route, sizeof(route)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_EVENT_TYPE], type, sizeof(type)))
        return false;
    /* The bounds are converted once, not the column per row, so an index
     * on the column serves the range. */
    if (layout->timestamp_kind == OUTBOX_TS_TIME) {
        snprintf(lo, sizeof(lo), "%s >= pg_catalog.to_timestamp($1::float8 / 1000000)", ts);
        snprintf(hi, sizeof(hi), "%s < pg_catalog.to_timestamp($2::float8 / 1000000)", ts);
    } else if (layout->timestamp_kind == OUTBOX_TS_EPOCH_MS) {
        /* [floor(since / 1000), ceil(until / 1000)) in milliseconds */
        snprintf(lo, sizeof(lo), "%s >= pg_catalog.div($1::bigint, 1000)", ts);
        snprintf(hi, sizeof(hi), "%s < pg_catalog.div($2::bigint + 999, 1000)", ts);
    } else {
        return false;
    }
    n = snprintf(buf, buflen, "SELECT %s::text, %s::text, %s::text FROM %s WHERE %s AND %s", id,
                 route, type, rel, lo, hi);
    return n > 0 && (size_t)n < buflen;
}

bool poll_sql_ids_exist(const char *schema, const char *table, const struct outbox_columns *cols,
                        char *buf, size_t buflen)
{
    char rel[520], id[260];
    int n;

    if (!poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !poll_sql_quote_ident(cols->role[OUTBOX_COL_ID], id, sizeof(id)))
        return false;
    n = snprintf(
        buf, buflen,
        "SELECT x FROM pg_catalog.unnest($1::text[]) AS x WHERE EXISTS (SELECT 1 FROM %s WHERE "
        "%s::text = x)",
        rel, id);
    return n > 0 && (size_t)n < buflen;
}

char *poll_sql_array(const char *const *vals, const int *lens, size_t n)
{
    size_t cap = 3, len = 0;
    char *out;

    for (size_t i = 0; i < n; i++) {
        size_t l = lens[i] < 0 ? strlen(vals[i]) : (size_t)lens[i];
        cap += 2 * l + 3; /* every byte escaped at worst, two quotes, a comma */
    }
    out = xmalloc(cap);
    out[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        size_t l = lens[i] < 0 ? strlen(vals[i]) : (size_t)lens[i];

        if (i > 0)
            out[len++] = ',';
        out[len++] = '"';
        for (size_t j = 0; j < l; j++) {
            char c = vals[i][j];
            if (c == '"' || c == '\\')
                out[len++] = '\\';
            out[len++] = c;
        }
        out[len++] = '"';
    }
    out[len++] = '}';
    out[len] = '\0';
    return out;
}
