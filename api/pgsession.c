/*
 * What the api's libpq sessions share, the pool's and the migrator's: their
 * parameters, their notices, one-line messages and the classification of
 * a failed command by its SQLSTATE. Must never copy a connection string or
 * a password into a message.
 */
#include "pgsession.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "pgerr.h"

int64_t pgsession_now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Copies a libpq message into buf on one line: newlines and tabs become
 * spaces, and double quotes single ones, so it fits a log's key="value".
 */
void pgsession_flatten(char *buf, size_t len, const char *prefix, const char *msg)
{
    size_t n;

    if (len == 0)
        return;
    snprintf(buf, len, "%s%s", prefix, msg != NULL ? msg : "");
    n = strlen(buf);
    for (size_t i = 0; i < n; i++) {
        if (buf[i] == '\n' || buf[i] == '\t' || buf[i] == '\r')
            buf[i] = ' ';
        else if (buf[i] == '"')
            buf[i] = '\'';
    }
    while (n > 0 && buf[n - 1] == ' ')
        buf[--n] = '\0';
}

/*
 * Server notices ("relation already exists, skipping") go to the debug log. A
 * FATAL arriving while the session is idle (fast shutdown, pg_terminate_backend)
 * is delivered here too: it dooms the pooled session, so the next checkout
 * reconnects instead of sending a statement into a closing socket.
 */
void pgsession_notice(void *arg, const PGresult *res)
{
    bool *doomed = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    char line[STORE_ERR_MAX];

    if (doomed != NULL && sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        *doomed = true;
    pgsession_flatten(line, sizeof(line), "", PQresultErrorMessage(res));
    log_debug("postgres notice message=\"%s\"", line);
}

PQconninfoOption *pgsession_parse_url(const char *url, char *errbuf, size_t errlen)
{
    char *perr = NULL;
    PQconninfoOption *info = PQconninfoParse(url, &perr);

    if (info == NULL) {
        /* perr may quote part of the string, password included: do not copy it. */
        PQfreemem(perr);
        pgsession_flatten(errbuf, errlen, "",
                          "not a valid libpq connection URI or key=value string");
    }
    return info;
}

/*
 * Expands url with PQconninfoParse and adds our settings: unless the URL sets
 * them, connect_timeout, tcp_user_timeout and (when service is true)
 * statement_timeout; and always, after the URL's own "options", the pinned
 * session (common/pgparams.h: client_encoding UTF8, search_path) and
 * TimeZone=UTC (created_at renders in UTC). search_path is pg_catalog for
 * the service: every table is named with its schema. The migrations create
 * their tables unqualified, so they run with search_path public (pg_catalog
 * is still searched first), which puts them in public whatever the role's or
 * the database's search_path.
 */
int pgsession_params(struct pgparams *p, const char *url, int timeout_ms, bool service,
                     char *errbuf, size_t errlen)
{
    PQconninfoOption *info = pgsession_parse_url(url, errbuf, errlen);
    char buf[64];
    int secs = (timeout_ms + 999) / 1000;

    if (info == NULL)
        return -1;
    pgparams_init(p);
    for (PQconninfoOption *o = info; o->keyword != NULL; o++)
        if (o->val != NULL)
            pgparams_set(p, o->keyword, o->val);
    PQconninfoFree(info);
    /* libpq treats 1 as 2; round up so the wait is never shorter than asked. */
    snprintf(buf, sizeof(buf), "%d", secs < 2 ? 2 : secs);
    pgparams_default(p, "connect_timeout", buf);
    snprintf(buf, sizeof(buf), "%d", timeout_ms < 10000 ? 10000 : timeout_ms);
    pgparams_default(p, "tcp_user_timeout", buf);
    pgparams_set(p, "fallback_application_name", "orders-api");
    snprintf(buf, sizeof(buf), "-c statement_timeout=%d", timeout_ms);
    pgparams_pin_session(p, service ? NULL : "public", service ? buf : NULL, "-c TimeZone=UTC");
    return 0;
}

bool pgsession_sqlstate_is(const PGresult *res, const char *code)
{
    const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s != NULL && strcmp(s, code) == 0;
}

/*
 * Maps a failed result to a status and message by its SQLSTATE
 * (common/pgerr.h): connection loss, shutdown, resource exhaustion, timeouts,
 * a session state such as read-only, and a missing schema are
 * STORE_UNAVAILABLE (retry later / elsewhere); the rest is STORE_ERROR.
 */
enum store_status pgsession_classify(PGconn *conn, const PGresult *res, const char *what,
                                     char *errbuf, size_t errlen)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char prefix[96];

    if (msg == NULL)
        msg = PQerrorMessage(conn);
    snprintf(prefix, sizeof(prefix), "%s: %s%s", what, state != NULL ? state : "",
             state != NULL ? " " : "");
    pgsession_flatten(errbuf, errlen, prefix, msg);
    if (PQstatus(conn) != CONNECTION_OK)
        return STORE_UNAVAILABLE;
    switch (pgerr_classify(state)) {
    case PGERR_CONNECTION:
    case PGERR_TRANSIENT:
    case PGERR_SESSION:
    case PGERR_IN_USE:
    case PGERR_SCHEMA: /* not migrated yet */
        return STORE_UNAVAILABLE;
    case PGERR_PERMANENT:
    case PGERR_LOGIN:
        break;
    }
    return STORE_ERROR;
}
