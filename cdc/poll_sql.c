/*
 * SQL text for the polling relay. The table name comes from --table, so it is
 * always quoted as an identifier, never pasted; values travel as parameters.
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

/* "schema"."table" into buf. */
static bool qualified(const char *schema, const char *table, char *buf, size_t buflen)
{
    char s[256], t[256];
    int n;

    if (!poll_sql_quote_ident(schema, s, sizeof(s)) || !poll_sql_quote_ident(table, t, sizeof(t)))
        return false;
    n = snprintf(buf, buflen, "%s.%s", s, t);
    return n > 0 && (size_t)n < buflen;
}

bool poll_sql_select(const char *schema, const char *table, bool commit_ts, char *buf,
                     size_t buflen)
{
    char rel[520];
    int n;

    if (!qualified(schema, table, rel, sizeof(rel)))
        return false;
    /*
     * Column order is enum poll_sql_col. Text forms are what pgoutput sends
     * in stream mode (uuid and jsonb output functions), so both modes make
     * the same message. xmin is the inserting transaction: this relay's own
     * UPDATE is not visible to its SELECT, and a rolled-back mark leaves the
     * original row version. ORDER BY matches the partial index of migration
     * 0004; created_at is the inserting transaction's start time, so this is
     * start order, not commit order (docs/relay.md, "Polling mode").
     */
    n = snprintf(buf, buflen,
                 "SELECT id::text, aggregate_type::text, aggregate_id::text, event_type::text,"
                 " payload::text, (extract(epoch FROM %s) * 1000000)::bigint"
                 " FROM %s WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1"
                 " FOR UPDATE SKIP LOCKED",
                 commit_ts ? "coalesce(pg_catalog.pg_xact_commit_timestamp(xmin), created_at)"
                           : "created_at",
                 rel);
    return n > 0 && (size_t)n < buflen;
}

bool poll_sql_mark(const char *schema, const char *table, char *buf, size_t buflen)
{
    char rel[520];
    int n;

    if (!qualified(schema, table, rel, sizeof(rel)))
        return false;
    n = snprintf(buf, buflen, "UPDATE %s SET published_at = pg_catalog.now() WHERE id = ANY($1)",
                 rel);
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
