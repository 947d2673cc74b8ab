/*
 * Plain (not replication) libpq access to the outbox table for the relay's
 * commands: the table's columns read into the column mapping's layout (poll
 * mode and audit check the same way), the rows of a time range, and which
 * ids the table holds. SQL text comes from cdc/poll_sql.c. Does not log;
 * failures come back with a message in the caller's buffer. With
 * cdc/repl.c, cdc/poll_pg.c and cdc/pgconn.c, the only relay files that
 * include libpq-fe.h; a connection is libpq's struct pg_conn (PGconn),
 * declared here without its header.
 */
#ifndef ORDERS_CDC_OUTBOX_PG_H
#define ORDERS_CDC_OUTBOX_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "outbox.h"

struct pg_conn;
struct pg_result;

enum outbox_pg_status {
    OUTBOX_PG_OK = 0,
    OUTBOX_PG_ERETRY = -1, /* connection trouble or a transient server state */
    OUTBOX_PG_EFATAL = -2, /* something a person must fix (table, column, rights, login) */
};

/* A failed command's result by its SQLSTATE (common/pgerr.h): connection
 * loss and passing server or session states are OUTBOX_PG_ERETRY; a missing
 * table or column, missing rights, bad SQL or bad data OUTBOX_PG_EFATAL. */
enum outbox_pg_status outbox_pg_classify(struct pg_conn *conn, const struct pg_result *res);

/* Runs sql, a command (or several) without parameters whose result is not
 * needed; on failure err is "<what> failed: <server's message>". */
enum outbox_pg_status outbox_pg_command(struct pg_conn *conn, const char *sql, const char *what,
                                        char *err, size_t errlen);

/* What the table is, besides the layout. */
struct outbox_pg_table {
    bool exists;
    bool can_select, can_update; /* the connected role's rights on it */
    bool has_published;          /* the mapping's published column is there */
};

/*
 * Reads schema.table from the catalog: whether it exists, the role's rights,
 * and its columns into *layout by the mapping cols (outbox_layout_init; cols
 * is kept in layout). OUTBOX_PG_EFATAL with a message naming the missing
 * column and its option when a mapped column is absent; a missing table is
 * OUTBOX_PG_OK with t->exists false (the caller says what to run).
 */
enum outbox_pg_status outbox_pg_inspect(struct pg_conn *conn, const char *schema, const char *table,
                                        const struct outbox_columns *cols,
                                        struct outbox_layout *layout, struct outbox_pg_table *t,
                                        char *err, size_t errlen) MUSTCHECK;

/* Connects through cdc/pgconn.c (the relay's pinned session: TimeZone=UTC,
 * which the range query's timestamp columns are read in, search_path
 * pg_catalog) with application_name app. NULL with err filled; *fatal tells a
 * login or configuration problem from a transient one. */
struct pg_conn *outbox_pg_connect(const char *dburl, const char *app, int connect_timeout_s,
                                  bool *fatal, char *err, size_t errlen);

void outbox_pg_close(struct pg_conn *conn); /* NULL-safe */

/* A row of outbox_pg_scan_range: id, route, type (NUL-terminated, borrowed
 * for the call; NULL for SQL NULL). Return false to stop the scan. */
typedef bool (*outbox_pg_row_fn)(void *arg, const char *id, const char *route, const char *type);

/*
 * Streams the rows whose timestamp column is in [since_us, until_us) (Unix
 * microseconds) to fn, one at a time (libpq single-row mode: memory stays
 * flat however many rows). *nrows gets the count.
 */
enum outbox_pg_status outbox_pg_scan_range(struct pg_conn *conn, const char *schema,
                                           const char *table, const struct outbox_layout *layout,
                                           int64_t since_us, int64_t until_us, outbox_pg_row_fn fn,
                                           void *arg, uint64_t *nrows, char *err,
                                           size_t errlen) MUSTCHECK;

/* Sets found[i] for each of the n ids the table has a row for (ids[i] of
 * lens[i] bytes). */
enum outbox_pg_status outbox_pg_ids_exist(struct pg_conn *conn, const char *schema,
                                          const char *table, const struct outbox_columns *cols,
                                          const char *const *ids, const int *lens, size_t n,
                                          bool *found, char *err, size_t errlen) MUSTCHECK;

#endif
