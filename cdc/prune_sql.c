/*
 * SQL text for cdc-relay prune (see prune_sql.h). Every function of the
 * server is written with its schema (pg_catalog.) so that no object of the
 * table's schema can stand in for it.
 */
#include "prune_sql.h"

#include <stdio.h>
#include <string.h>

#include "poll_sql.h"

bool prune_sql_cond(const struct outbox_layout *layout, bool poll_mode, char *buf, size_t buflen)
{
    const struct outbox_columns *cols = layout->cols;
    char ts[260], old[400];
    int n;

    if (layout->timestamp < 0 || !poll_sql_quote_ident(cols->timestamp, ts, sizeof(ts)))
        return false;
    /* The cutoff is converted once, not the column per row, so an index on
     * the column can serve it. */
    if (layout->timestamp_kind == OUTBOX_TS_TIME)
        snprintf(old, sizeof(old), "%s < pg_catalog.to_timestamp($1::pg_catalog.float8 / 1000000)",
                 ts);
    else if (layout->timestamp_kind == OUTBOX_TS_EPOCH_MS)
        snprintf(old, sizeof(old), "%s < pg_catalog.div($1::pg_catalog.int8, 1000)", ts);
    else
        return false;
    if (poll_mode) {
        char published[260];

        if (cols->published == NULL ||
            !poll_sql_quote_ident(cols->published, published, sizeof(published)))
            return false;
        n = snprintf(buf, buflen, "%s AND %s IS NOT NULL", old, published);
    } else {
        /*
         * xmin precedes H. Both ages are taken against the same transaction
         * id within one statement, so the comparison is right across xid
         * wraparound as long as the row's xmin is less than 2^31
         * transactions old; xmin is read raw (freezing keeps it), so a row
         * older than that compares as newer and is kept, never deleted. A
         * non-normal xmin (frozen before 9.4, bootstrap) has age INT_MAX:
         * committed before anything.
         */
        n = snprintf(buf, buflen,
                     "%s AND pg_catalog.age(xmin) > "
                     "pg_catalog.age(pg_catalog.xid($2::pg_catalog.xid8))",
                     old);
    }
    return n > 0 && (size_t)n < buflen;
}

bool prune_sql_batch(const char *schema, const char *table, const struct outbox_layout *layout,
                     bool poll_mode, char *buf, size_t buflen)
{
    char rel[540], cond[1200];
    int first = poll_mode ? 2 : 3, n;

    if (!poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !prune_sql_cond(layout, poll_mode, cond, sizeof(cond)))
        return false;
    n = snprintf(buf, buflen,
                 "WITH batch AS (SELECT ctid AS t FROM %s WHERE ctid > $%d::pg_catalog.tid AND %s "
                 "LIMIT $%d::pg_catalog.int4 FOR UPDATE SKIP LOCKED), "
                 "gone AS (DELETE FROM %s WHERE ctid = ANY (ARRAY(SELECT t FROM batch)) "
                 "RETURNING 1) "
                 "SELECT (SELECT pg_catalog.count(*) FROM batch), "
                 "(SELECT pg_catalog.count(*) FROM gone), "
                 "(SELECT pg_catalog.max(t) FROM batch)::pg_catalog.text",
                 rel, first, cond, first + 1, rel);
    return n > 0 && (size_t)n < buflen;
}

bool prune_sql_count(const char *schema, const char *table, const struct outbox_layout *layout,
                     bool poll_mode, char *buf, size_t buflen)
{
    char rel[540], cond[1200];
    int n;

    if (!poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !prune_sql_cond(layout, poll_mode, cond, sizeof(cond)))
        return false;
    n = snprintf(buf, buflen, "SELECT pg_catalog.count(*) FROM %s WHERE %s", rel, cond);
    return n > 0 && (size_t)n < buflen;
}

bool prune_sql_partition_check(const char *schema, const char *table,
                               const struct outbox_layout *layout, bool poll_mode, char *buf,
                               size_t buflen)
{
    char rel[540], cond[1200];
    int n;

    if (!poll_sql_qualified(schema, table, rel, sizeof(rel)) ||
        !prune_sql_cond(layout, poll_mode, cond, sizeof(cond)))
        return false;
    /* IS NOT TRUE: a NULL timestamp does not qualify, and keeps the partition. */
    n = snprintf(buf, buflen,
                 "SELECT pg_catalog.count(*), pg_catalog.count(*) FILTER (WHERE (%s) IS NOT TRUE) "
                 "FROM %s",
                 cond, rel);
    return n > 0 && (size_t)n < buflen;
}

bool prune_sql_partitions(const struct outbox_layout *layout, char *buf, size_t buflen)
{
    const char *ends;
    int n;

    /* The server prints a range bound as FOR VALUES FROM (a) TO (b), b
     * quoted for a time and bare for a number; anything else (MAXVALUE, a
     * list, DEFAULT) does not match and keeps the partition. A timestamp
     * without time zone is read as UTC, the session's zone. */
    if (layout->timestamp_kind == OUTBOX_TS_TIME)
        ends = "(pg_catalog.regexp_match(b.bound, 'TO \\(''([^'']+)''\\)$'))[1]"
               "::pg_catalog.timestamptz <= "
               "pg_catalog.to_timestamp($3::pg_catalog.float8 / 1000000)";
    else if (layout->timestamp_kind == OUTBOX_TS_EPOCH_MS)
        ends = "(pg_catalog.regexp_match(b.bound, 'TO \\((-?[0-9]+)\\)$'))[1]"
               "::pg_catalog.int8 <= pg_catalog.div($3::pg_catalog.int8, 1000)";
    else
        return false;
    n = snprintf(buf, buflen,
                 "SELECT n.nspname, c.relname, c.relkind, b.bound, coalesce(%s, false) "
                 "FROM pg_catalog.pg_inherits i "
                 "JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid "
                 "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
                 "CROSS JOIN LATERAL (SELECT pg_catalog.pg_get_expr(c.relpartbound, c.oid) "
                 "AS bound) b "
                 "WHERE i.inhparent = (SELECT r.oid FROM pg_catalog.pg_class r "
                 "JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace "
                 "WHERE rn.nspname = $1 AND r.relname = $2) "
                 "ORDER BY b.bound",
                 ends);
    return n > 0 && (size_t)n < buflen;
}

const char *prune_sql_partitioning(void)
{
    return "SELECT coalesce((SELECT pt.partstrat = 'r' AND pt.partnatts = 1 AND "
           "pt.partattrs[0] = a.attnum "
           "FROM pg_catalog.pg_partitioned_table pt "
           "JOIN pg_catalog.pg_class r ON r.oid = pt.partrelid "
           "JOIN pg_catalog.pg_namespace rn ON rn.oid = r.relnamespace "
           "JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid AND a.attname = $3 "
           "WHERE rn.nspname = $1 AND r.relname = $2), false)";
}
