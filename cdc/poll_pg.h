/*
 * The polling relay's database side (--mode poll): an ordinary libpq
 * connection (no slot, no publication) that reads batches of unpublished
 * outbox rows under FOR UPDATE SKIP LOCKED and marks them published in the
 * same transaction. Does not log; failures come back with a message in the
 * caller's buffer. With cdc/repl.c, cdc/outbox_pg.c and cdc/pgconn.c, the
 * only files of the relay that include libpq-fe.h.
 */
#ifndef ORDERS_CDC_POLL_PG_H
#define ORDERS_CDC_POLL_PG_H

#include <stdbool.h>
#include <stddef.h>

#include "compiler.h"
#include "outbox.h"

enum poll_pg_status {
    POLL_PG_OK = 0,
    POLL_PG_ERETRY = -1, /* connection trouble or a transient server state: reconnect */
    POLL_PG_EFATAL = -2, /* something a person must fix (table, column, rights, login) */
    POLL_PG_ESTOP = -3,  /* poll_pg_open: stop_fd became readable while connecting */
};

struct poll_pg;

/*
 * Connects (cdc/pgconn.c: application_name cdc-relay-poll, TCP keepalives,
 * the relay's pinned session settings; stop_fd, when readable, interrupts
 * the connect with POLL_PG_ESTOP), checks that schema.table exists with the
 * columns of cols (the roles, the header columns, the published and
 * timestamp columns; the traceparent one when required) and that the role
 * can read and update it, and prepares the batch and mark statements.
 * *layout gets the columns' positions and types (cols borrowed in it);
 * *commit_ts tells whether the server tracks commit timestamps (then they
 * are the timestamp column). Returns new (free with poll_pg_close) or NULL
 * with *st and err set.
 */
struct poll_pg *poll_pg_open(const char *dburl, const char *schema, const char *table,
                             const struct outbox_columns *cols, int connect_timeout_s, int stop_fd,
                             bool *commit_ts, struct outbox_layout *layout, enum poll_pg_status *st,
                             char *err, size_t errlen);

/* BEGIN, then the batch query for at most limit rows. On POLL_PG_OK the rows
 * are readable with poll_pg_value until the next call; on failure the
 * transaction is rolled back (best effort). */
enum poll_pg_status poll_pg_fetch(struct poll_pg *pp, int limit, int *nrows, char *err,
                                  size_t errlen) MUSTCHECK;

/* Column col (enum outbox_col, then enum poll_sql_col) of row of the last batch, NUL-terminated,
 * borrowed until the next fetch; NULL for SQL NULL. *len gets its length. */
const char *poll_pg_value(const struct poll_pg *pp, int row, int col, size_t *len);

/* Marks the rows whose ids are in ids (an array literal, poll_sql_array) and
 * commits. expect: how many rows the update must touch; anything else rolls
 * back and is POLL_PG_ERETRY. */
enum poll_pg_status poll_pg_mark_commit(struct poll_pg *pp, const char *ids, int expect, char *err,
                                        size_t errlen) MUSTCHECK;

/* Ends the open transaction without marking anything (best effort). */
void poll_pg_rollback(struct poll_pg *pp);

/* True while the connection is usable. */
bool poll_pg_ok(const struct poll_pg *pp);

void poll_pg_close(struct poll_pg *pp); /* NULL-safe */

#endif
