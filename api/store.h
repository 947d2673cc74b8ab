/*
 * The seam between the HTTP layer and order storage: a small ops table that
 * store_pg.c implements over a libpq pool (and a test double could implement
 * in memory). Declarations only; no I/O library types cross it.
 */
#ifndef ORDERS_API_STORE_H
#define ORDERS_API_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "api_metrics.h"
#include "orders.h"

#define STORE_ERR_MAX 256

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,    /* order_get: no such order */
    STORE_UNAVAILABLE,  /* database unreachable, busy, shutting down or not migrated: 503;
                           nothing was written */
    STORE_ERROR,        /* anything else the server refused: 500 */
    STORE_KEY_MISMATCH, /* order_create: the Idempotency-Key was first used for a different
                           request: 422; nothing was written */
};

/* How the OrderCreated event leaves the order transaction (--outbox-mode). */
enum store_outbox_mode {
    STORE_OUTBOX_TABLE = 0, /* INSERT INTO outbox */
    STORE_OUTBOX_MESSAGE,   /* pg_logical_emit_message(true, 'outbox', ...): no table write */
};

struct store_order {
    char id[ORDERS_ID_LEN + 1]; /* canonical lower-case uuid text */
    char *json;                 /* the order as a JSON object, exactly as PostgreSQL rendered
                                   it; returns new: free() it */
};

/* An Idempotency-Key and the request it guards. */
struct store_idempotency {
    const char *key;          /* satisfies idem_key_valid(); NUL-terminated */
    const char *request_hash; /* idem_request_hash() of the request */
};

/* What POST /orders answers: a new order, or the stored answer to the key's first use. */
struct store_created {
    int http_status; /* 201 (a replay answers the stored status, so far always 201) */
    char *body;      /* the order JSON as PostgreSQL rendered it, byte-identical to the event
                        payload; returns new: free() it (or hand it to the HTTP library) */
    char *location;  /* "/orders/{id}"; returns new: free() it. NULL if the stored answer had
                        no Location */
    bool replayed;   /* answered from idempotency_keys: this request wrote nothing */
};

/*
 * Every function is thread-safe, logs no failure, and on a status other than
 * STORE_OK / STORE_NOT_FOUND writes the reason to errbuf (STORE_ERR_MAX bytes
 * is enough); the caller decides what to log. On STORE_OK *out is filled.
 */
struct store_ops {
    /*
     * Inserts the order and its OrderCreated event (outbox row or logical
     * message, by the store's mode) atomically. With idem != NULL (borrowed for
     * the call), the key row is written first in the same transaction; if the
     * key already exists (or a concurrent request holding it commits first), the
     * stored answer is returned with replayed set and nothing is written, or
     * STORE_KEY_MISMATCH if its request hash differs. Never retried after the
     * statement may have reached the server, except on a serialization failure
     * or deadlock (rolled back by the server).
     */
    enum store_status (*order_create)(void *store, const struct order_request *req,
                                      const struct store_idempotency *idem,
                                      struct store_created *out, char *errbuf, size_t errlen);
    /* id must satisfy orders_id_valid(). A broken connection is reset and the read
     * retried once. */
    enum store_status (*order_get)(void *store, const char *id, struct store_order *out,
                                   char *errbuf, size_t errlen);
    /* STORE_OK if a pooled connection answers SELECT 1. */
    enum store_status (*ping)(void *store, char *errbuf, size_t errlen);
    /*
     * Fills *out with the pool's size, connections checked out, the wait
     * histogram of every checkout and the timeouts so far (for /metrics).
     * Never blocks on the database; may be NULL (no pool families shown).
     */
    void (*pool_stats)(void *store, struct api_metrics_pool *out);
};

#endif
