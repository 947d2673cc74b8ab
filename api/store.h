/*
 * The seam between the HTTP layer and order storage: a small ops table that
 * store_pg.c implements over a libpq pool (and a test double could implement
 * in memory). Declarations only; no I/O library types cross it.
 */
#ifndef ORDERS_API_STORE_H
#define ORDERS_API_STORE_H

#include <stddef.h>

#include "orders.h"

#define STORE_ERR_MAX 256

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* order_get: no such order */
    STORE_UNAVAILABLE, /* database unreachable, busy, shutting down or not migrated: 503;
                          nothing was written */
    STORE_ERROR,       /* anything else the server refused: 500 */
};

struct store_order {
    char id[ORDERS_ID_LEN + 1]; /* canonical lower-case uuid text */
    char *json;                 /* the order as a JSON object, exactly as PostgreSQL rendered
                                   it (for POST, byte-identical to the outbox payload);
                                   returns new: free() it */
};

/*
 * Every function is thread-safe, logs no failure, and on a status other than
 * STORE_OK / STORE_NOT_FOUND writes the reason to errbuf (STORE_ERR_MAX bytes
 * is enough); the caller decides what to log. On STORE_OK *out is filled.
 */
struct store_ops {
    /* Inserts the order and its OrderCreated outbox row atomically. Never retried
     * after the statement may have reached the server. */
    enum store_status (*order_create)(void *store, const struct order_request *req,
                                      struct store_order *out, char *errbuf, size_t errlen);
    /* id must satisfy orders_id_valid(). A broken connection is reset and the read
     * retried once. */
    enum store_status (*order_get)(void *store, const char *id, struct store_order *out,
                                   char *errbuf, size_t errlen);
    /* STORE_OK if a pooled connection answers SELECT 1. */
    enum store_status (*ping)(void *store, char *errbuf, size_t errlen);
};

#endif
