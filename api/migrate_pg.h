/*
 * orders-api --migrate: the schema migrations (api/migrations.h) applied to
 * the database, each once. The only api/ module besides the store that
 * talks to Postgres.
 */
#ifndef ORDERS_API_MIGRATE_PG_H
#define ORDERS_API_MIGRATE_PG_H

#include <stddef.h>
#include <stdint.h>

#include "api/migrations.h"
#include "compiler.h"

/* Session advisory lock held while migrating ("ordersmg" in ASCII). */
#define MIGRATE_PG_LOCK_KEY INT64_C(0x6F72646572736D67)

/*
 * Applies the pending entries of migs[0..count) (ascending versions), each in
 * its own transaction together with its schema_migrations row, under a session
 * advisory lock (MIGRATE_PG_LOCK_KEY); creates schema_migrations if
 * missing. timeout_ms bounds connecting only (migrations get no
 * statement_timeout). Logs (info) each migration applied, and waiting for the lock.
 * *applied gets the number applied, *version the highest version now recorded.
 * @returns 0, or -1 with errbuf naming the failed step or migration and the
 * server's message; the failed migration leaves nothing behind.
 */
int migrate_pg_run(const char *database_url, int timeout_ms, const struct migration *migs,
                   int count, int *applied, int *version, char *errbuf, size_t errlen) MUSTCHECK;

#endif
