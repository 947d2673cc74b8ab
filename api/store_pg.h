/*
 * PostgreSQL storage for orders-api: a fixed pool of libpq connections with
 * prepared statements (api/store_sql.c), implementing struct store_ops. The
 * migrator behind --migrate is api/migrate_pg.c; both share api/pgsession.c.
 */
#ifndef ORDERS_API_STORE_PG_H
#define ORDERS_API_STORE_PG_H

#include <stdint.h>

#include "compiler.h"
#include "store.h"

/* Minimum time between reconnect attempts of one pooled connection. */
#define STORE_PG_RECONNECT_MS 1000

struct store_pg;

struct store_pg_options {
    const char *database_url; /* libpq URI or key=value string; copied */
    int pool_size;            /* connections, >= 1 */
    int timeout_ms;           /* checkout wait; also connect_timeout (rounded up to whole
                                 seconds, at least 2) and statement_timeout, unless the URL
                                 sets them */
    /* How order_create writes the OrderCreated event: outbox row or logical message. */
    enum store_outbox_mode outbox_mode;
};

/*
 * The ops table to use with a struct store_pg * as the store argument. Its
 * functions log nothing but server notices (debug level, e.g. the FATAL a
 * server sends an idle session before closing it).
 */
extern const struct store_ops store_pg_ops;

/*
 * Checks that url parses as a libpq connection string and writes a
 * password-free description ("host=... port=... dbname=... user=...") to desc.
 * @returns 0, or -1 with a generic reason in errbuf (libpq's parse message is
 * not copied: it can quote the password). Never logs.
 */
int store_pg_describe(const char *url, char *desc, size_t desclen, char *errbuf,
                      size_t errlen) MUSTCHECK;

/*
 * Creates the pool and tries to connect every slot now. A slot that cannot
 * connect is retried on checkout (at most every STORE_PG_RECONNECT_MS), so the
 * service can start before the database. *connected gets the number of slots
 * that connected. Every connection runs with TimeZone=UTC.
 * @returns new (free with store_pg_close), or NULL with errbuf filled if the URL
 * does not parse. Logs only server notices (debug). Not thread-safe; call before serving.
 */
struct store_pg *store_pg_open(const struct store_pg_options *opt, int *connected, char *errbuf,
                               size_t errlen) MUSTCHECK;

/* Closes every connection. Callers must have stopped using the store. NULL is a no-op. */
void store_pg_close(struct store_pg *st);

/* libpq's run-time version number (PQlibVersion), for --version and build_info. */
int store_pg_libpq_version(void);

#endif
