/*
 * Re-emit with identity (docs/operations.md#re-emitting-events): the request
 * `cdc-relay reemit` writes into the WAL as a transactional logical decoding
 * message (prefix REEMIT_PREFIX), and the query the running relay serves it
 * with when it decodes the message at its place in the stream. Pure: JSON
 * and SQL text from buffers and names, no I/O, never logs.
 */
#ifndef ORDERS_CDC_REEMIT_H
#define ORDERS_CDC_REEMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"

/* The message prefix of a request; distinct from any --message-prefix an
 * outbox event may use (options refuse this one there). */
#define REEMIT_PREFIX "cdc-relay-reemit"

enum reemit_kind {
    REEMIT_IDS,  /* the id column in [first_id, last_id] (the column type's order) */
    REEMIT_TIME, /* the timestamp column in [since_us, until_us) */
};

/* Room for a request's id bounds (bytes, NUL included). */
#define REEMIT_ID_MAX 256

struct reemit_request {
    enum reemit_kind kind;
    char slot[128]; /* the relay (slot) that serves it; others ignore it */
    char first_id[REEMIT_ID_MAX], last_id[REEMIT_ID_MAX];
    int64_t since_us, until_us; /* Unix microseconds */
    char *snapshot;             /* pg_snapshot text of the command's transaction (owned, malloc) */
};

/* Splits an --ids value "A..B" (or "A", meaning A..A) into the bounds.
 * False for an empty bound or one longer than REEMIT_ID_MAX - 1 bytes. */
bool reemit_parse_ids(const char *text, struct reemit_request *req);

/* The request as a JSON object; returns new (free()), NULL when a field does
 * not fit (never for a request reemit_parse_ids and the options made). */
char *reemit_request_format(const struct reemit_request *req);

/*
 * Parses a request message's content into *req (req->snapshot allocated:
 * reemit_request_free). False with *why (static) for anything that is not
 * a version 1 request: not JSON, a field missing or of the wrong type, an
 * empty range, a snapshot that is not xmin:xmax:xip text.
 */
bool reemit_request_parse(const uint8_t *content, size_t len, struct reemit_request *req,
                          const char **why);

void reemit_request_free(struct reemit_request *req); /* NULL-safe; keeps the struct */

/*
 * The relay's query for a request (a cursor is declared over it): the
 * columns of the polling relay's batch query (enum poll_sql_col: the five
 * roles, the row time as Unix microseconds, traceparent, the header
 * columns) of the rows in the range ($1, $2: the id bounds, typed by the
 * column; or the Unix microseconds of the time bounds) that were visible to
 * the request's snapshot ($3: rows committed after the request are live
 * events still to come, never re-sent ahead of themselves), in a stable
 * order: the row time, then the id (just the id when the table has no time
 * column). commit_ts: the server tracks commit timestamps, which are then
 * the row time (as in poll mode). False when a name is empty, a time range
 * lacks a usable timestamp column, or the text does not fit in buf.
 */
bool reemit_sql_select(const char *schema, const char *table, const struct outbox_layout *layout,
                       enum reemit_kind kind, bool commit_ts, char *buf, size_t buflen);

#endif
