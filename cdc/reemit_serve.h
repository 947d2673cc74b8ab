/*
 * The relay's side of re-emit (docs/operations.md#re-emitting-events): when
 * the stream reaches a request, its rows are read in batches and handed to
 * the relay one event at a time, in the request's stable order, before the
 * stream reads on. The relay produces them under the request's transaction,
 * so the request's position is confirmed only once Kafka acknowledged every
 * one (a restart re-reads the request and sends them again: at least once).
 * Between batches the relay keeps its stream alive (status updates,
 * delivery reports).
 */
#ifndef ORDERS_CDC_REEMIT_SERVE_H
#define ORDERS_CDC_REEMIT_SERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"
#include "reemit.h"

struct reemit_source {
    const char *database_url;
    int connect_timeout_s;
    const char *table_schema, *table_name;
    const struct outbox_columns *columns;
    int batch_rows;
};

struct reemit_hooks {
    /* Produces one event; commit_ts is the row time (ISO 8601 UTC), NULL
     * when the row has none. False: stop (the relay knows why). */
    bool (*emit)(void *arg, const struct outbox_event *ev, const char *commit_ts);
    /* Between batches and while Postgres is slow: serve Kafka, answer the
     * walsender. False: stop. */
    bool (*idle)(void *arg);
    void *arg;
};

enum reemit_result {
    REEMIT_DONE = 0, /* every row handed over */
    REEMIT_STOPPED,  /* a hook said stop */
    REEMIT_ERETRY,   /* Postgres trouble that passes (err says) */
    REEMIT_EFATAL,   /* a table, column or right a person must fix (err says) */
};

/*
 * Serves req: every row of its range visible to its snapshot. A row that
 * cannot make an event (a NULL key column, bad bytea) is logged and
 * skipped: it could not have been sent the first time either. *sent and
 * *skipped count the rows.
 */
enum reemit_result reemit_serve(const struct reemit_source *src, const struct reemit_request *req,
                                const struct reemit_hooks *hooks, uint64_t *sent, uint64_t *skipped,
                                char *err, size_t errlen);

#endif
