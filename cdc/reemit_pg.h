/*
 * libpq for re-emit (docs/operations.md#re-emitting-events): the command's
 * side (write the request into the WAL, learn when the relay has delivered
 * it) and the relay's side (the request's rows through a cursor, in
 * batches). SQL text comes from cdc/reemit.c; logs nothing, failures come
 * back with a message in the caller's buffer.
 */
#ifndef ORDERS_CDC_REEMIT_PG_H
#define ORDERS_CDC_REEMIT_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "outbox.h"
#include "outbox_pg.h"
#include "reemit.h"

/*
 * In one REPEATABLE READ transaction: takes its snapshot into req->snapshot
 * (allocated), writes the request with pg_logical_emit_message(true,
 * REEMIT_PREFIX, ...) and commits (synchronously). *request_lsn gets the
 * message's position (the request's name in logs and headers), *done_lsn the
 * server's WAL write position after the commit: once the slot's relay has
 * delivered up to there, the request is served.
 */
enum outbox_pg_status reemit_pg_request(struct pg_conn *conn, struct reemit_request *req,
                                        uint64_t *request_lsn, uint64_t *done_lsn, char *err,
                                        size_t errlen) MUSTCHECK;

/* Where slot's relay stands: the furthest of the slot's confirmed_flush_lsn
 * and the delivered position its walsender reports (pg_stat_replication's
 * replay_lsn, visible to the slot's own role or pg_read_all_stats). *exists
 * false when there is no such slot; *active whether a relay streams it. */
enum outbox_pg_status reemit_pg_position(struct pg_conn *conn, const char *slot, bool *exists,
                                         bool *active, uint64_t *delivered, char *err,
                                         size_t errlen) MUSTCHECK;

/* Rows of req's range visible to req->snapshot (NULL: the current one): the
 * relay's own query counted, so a table, column, right or bound (an id that
 * is not of the column's type) it would fail on fails here first. */
enum outbox_pg_status reemit_pg_count(struct pg_conn *conn, const char *schema, const char *table,
                                      const struct outbox_columns *cols,
                                      const struct reemit_request *req, uint64_t *count, char *err,
                                      size_t errlen) MUSTCHECK;

struct reemit_cursor;

/*
 * Connects, reads the table's columns into *layout, and opens a read-only
 * REPEATABLE READ transaction with a cursor over reemit_sql_select for req.
 * NULL with *st and err set.
 */
struct reemit_cursor *reemit_pg_open(const char *dburl, int connect_timeout_s, const char *schema,
                                     const char *table, const struct outbox_columns *cols,
                                     const struct reemit_request *req, struct outbox_layout *layout,
                                     enum outbox_pg_status *st, char *err, size_t errlen);

/* The next at most limit rows; *nrows 0 at the end. While the server
 * works, wait(arg) is called about every second; when it returns false the
 * fetch gives up with *stopped set (close the cursor). */
enum outbox_pg_status reemit_pg_fetch(struct reemit_cursor *c, int limit, bool (*wait)(void *arg),
                                      void *arg, bool *stopped, int *nrows, char *err,
                                      size_t errlen) MUSTCHECK;

/* Column col (enum poll_sql_col order) of row of the last fetch, NUL-terminated, borrowed
 * until the next fetch; NULL for SQL NULL. */
const char *reemit_pg_value(const struct reemit_cursor *c, int row, int col, size_t *len);

void reemit_pg_close(struct reemit_cursor *c); /* NULL-safe; rolls the transaction back */

#endif
