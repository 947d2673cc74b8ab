/*
 * The api's libpq sessions (api/store_pg.c's pool and api/migrate_pg.c's
 * migrator): connection parameters, server notices, messages on one line and
 * SQLSTATE classification (common/pgerr.h). Logs only notices (debug).
 */
#ifndef ORDERS_API_PGSESSION_H
#define ORDERS_API_PGSESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "pgparams.h"
#include "store.h"

/* Monotonic clock, microseconds. */
int64_t pgsession_now_us(void);

/* PQconninfoParse(url) (free with PQconninfoFree), or NULL with a generic
 * reason in errbuf: libpq's own parse message may quote the password. */
PQconninfoOption *pgsession_parse_url(const char *url, char *errbuf, size_t errlen);

/*
 * Expands url with PQconninfoParse and adds the api's settings (connect and
 * TCP timeouts, statement_timeout when service, the pinned session,
 * TimeZone=UTC). 0, or -1 with a generic reason in errbuf (libpq's own parse
 * message may quote the password). Free p with pgparams_fini.
 */
int pgsession_params(struct pgparams *p, const char *url, int timeout_ms, bool service,
                     char *errbuf, size_t errlen) MUSTCHECK;

/* Copies prefix and msg into buf on one line, double quotes made single, so
 * it fits a log's key="value". */
void pgsession_flatten(char *buf, size_t len, const char *prefix, const char *msg);

/* A PQnoticeReceiver: notices to the debug log; a FATAL or PANIC (the
 * server closing an idle session) sets *(bool *)arg when arg is not NULL. */
void pgsession_notice(void *arg, const PGresult *res);

/* Whether res carries SQLSTATE code. */
bool pgsession_sqlstate_is(const PGresult *res, const char *code);

/* A failed result's status (STORE_UNAVAILABLE: retry later or elsewhere;
 * STORE_ERROR) and its message, "what: SQLSTATE message", in errbuf. */
enum store_status pgsession_classify(PGconn *conn, const PGresult *res, const char *what,
                                     char *errbuf, size_t errlen);

#endif
