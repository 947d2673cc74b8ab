/*
 * The SQL of the polling relay (--mode poll), built from the configured
 * table name: identifier quoting, the batch query, the mark-as-published
 * update and its array parameter. Pure: no I/O, no logging.
 */
#ifndef ORDERS_CDC_POLL_SQL_H
#define ORDERS_CDC_POLL_SQL_H

#include <stdbool.h>
#include <stddef.h>

/* Columns of the batch query, in order (all text; TS_US is a bigint of Unix
 * microseconds, NULL when the row has no created_at). */
enum poll_sql_col {
    POLL_SQL_COL_ID,
    POLL_SQL_COL_AGGREGATE_TYPE,
    POLL_SQL_COL_AGGREGATE_ID,
    POLL_SQL_COL_EVENT_TYPE,
    POLL_SQL_COL_PAYLOAD,
    POLL_SQL_COL_TS_US,
    POLL_SQL_NCOLS
};

/*
 * Writes name as a double-quoted SQL identifier ("a""b" for a"b), so any
 * table name is taken literally and case-sensitively, as in stream mode.
 * Returns false (buf undefined) when name is empty or the result does not fit.
 */
bool poll_sql_quote_ident(const char *name, char *buf, size_t buflen);

/*
 * The batch query: the oldest unpublished rows, locked, skipping rows another
 * relay holds; $1 is the batch size. commit_ts: the timestamp column is the
 * transaction's commit time where the server tracks it
 * (track_commit_timestamp = on), else created_at. Returns false when the
 * names are empty or it does not fit in buf.
 */
bool poll_sql_select(const char *schema, const char *table, bool commit_ts, char *buf,
                     size_t buflen);

/* The mark: sets published_at on the rows whose id is in $1, an array literal
 * from poll_sql_array (its element type is inferred from id's). */
bool poll_sql_mark(const char *schema, const char *table, char *buf, size_t buflen);

/*
 * An array literal of n text values ({"a","b\"c"}), each double-quoted with
 * '"' and '\' escaped, for a parameter such as the mark's $1. lens[i] < 0
 * means strlen. Returns new (free()).
 */
char *poll_sql_array(const char *const *vals, const int *lens, size_t n);

#endif
