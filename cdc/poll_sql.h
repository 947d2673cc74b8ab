/*
 * The SQL the relay runs on the outbox table itself, built from the
 * configured table and column names: the polling relay's batch query,
 * mark-as-published update and array parameter (--mode poll), and the
 * audit's queries (cdc-relay audit). Pure: no I/O, no logging.
 */
#ifndef ORDERS_CDC_POLL_SQL_H
#define ORDERS_CDC_POLL_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "outbox.h"

/* Columns of the batch query, in order: the five roles (enum outbox_col),
 * then these, then one per header column (all text; TS_US is a bigint of
 * Unix microseconds, NULL when the row has no timestamp; TRACEPARENT is
 * NULL when the table has no such column). */
enum poll_sql_col {
    POLL_SQL_COL_TS_US = OUTBOX_NCOLS,
    POLL_SQL_COL_TRACEPARENT,
    POLL_SQL_COL_HEADERS /* first header column */
};

/* Room for the batch query with the longest names and 16 header columns. */
#define POLL_SQL_MAX 16384

/*
 * Writes name as a double-quoted SQL identifier ("a""b" for a"b), so any
 * table name is taken literally and case-sensitively, as in stream mode.
 * Returns false (buf undefined) when name is empty or the result does not fit.
 */
bool poll_sql_quote_ident(const char *name, char *buf, size_t buflen);

/* "schema"."table", each part quoted as above; false when either part is
 * empty or the result does not fit. */
bool poll_sql_qualified(const char *schema, const char *table, char *buf, size_t buflen);

/*
 * The batch query: the oldest unpublished rows, locked, skipping rows another
 * relay holds; $1 is the batch size. Column names come from layout->cols
 * (quoted); a table without the traceparent column (layout->traceparent < 0)
 * gets a NULL in its place. The timestamp column must be there
 * (OUTBOX_TS_TIME or OUTBOX_TS_EPOCH_MS). commit_ts: the timestamp is the
 * transaction's commit time where the server tracks it
 * (track_commit_timestamp = on), else the row's timestamp column. Returns
 * false when a name is empty, the timestamp column unusable, or the text
 * does not fit in buf.
 */
bool poll_sql_select(const char *schema, const char *table, const struct outbox_layout *layout,
                     bool commit_ts, char *buf, size_t buflen);

/*
 * Appends the batch query's column list (enum poll_sql_col) at *n in buf:
 * the roles, ts_us (an expression), the traceparent column or NULL, the
 * header columns, each column name quoted after alias ("" or "t."). Also
 * the list of the re-emit query (cdc/reemit.c). False when it does not fit.
 */
bool poll_sql_event_columns(const struct outbox_layout *layout, const char *alias,
                            const char *ts_us, char *buf, size_t buflen, size_t *n);

/* The timestamp column as Unix microseconds (bigint), the column name
 * quoted: e.g. (extract(epoch FROM "created_at") * 1000000)::bigint. False
 * when it does not fit or the kind is not a time. */
bool poll_sql_ts_us(const char *quoted, enum outbox_ts_kind kind, bool commit_ts, char *buf,
                    size_t buflen);

/* The mark: sets the published column on the rows whose id is in $1, an
 * array literal from poll_sql_array (its element type is inferred from the
 * id column's). */
bool poll_sql_mark(const char *schema, const char *table, const struct outbox_columns *cols,
                   char *buf, size_t buflen);

/*
 * The audit's row scan (cdc/audit.c): id, route and type (text) of the rows
 * whose timestamp column is in [$1, $2), both Unix microseconds as text
 * (the column may be a time, read as UTC, or bigint Unix milliseconds).
 * False when the layout has no usable timestamp column or it does not fit.
 */
bool poll_sql_range(const char *schema, const char *table, const struct outbox_layout *layout,
                    char *buf, size_t buflen);

/* Which of the ids in $1 (a text array literal) the table has, compared as
 * text (any id type, and a malformed id cannot fail the query). */
bool poll_sql_ids_exist(const char *schema, const char *table, const struct outbox_columns *cols,
                        char *buf, size_t buflen);

/*
 * An array literal of n text values ({"a","b\"c"}), each double-quoted with
 * '"' and '\' escaped, for a parameter such as the mark's $1. lens[i] < 0
 * means strlen. Returns new (free()).
 */
char *poll_sql_array(const char *const *vals, const int *lens, size_t n);

#endif
