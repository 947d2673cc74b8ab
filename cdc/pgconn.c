/*
 * libpq connections of the relay. libpq keeps no result for a failed
 * connection, so its SQLSTATE is read from the message, which libpq formats
 * with the code when the connection's error verbosity is PQERRORS_VERBOSE;
 * that can only be set between PQconnectStartParams and the end of the
 * handshake, hence the non-blocking connect (PQconnectPoll), which also lets
 * a stop request interrupt it.
 */
#include "pgconn.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pgparams.h"
#include "xmem.h"

/* What the relay's text decoding and headers rely on (ISO timestamps in
 * UTC, exact floats); after the URL's options, so it cannot change them. */
#define RELAY_SESSION_OPTIONS                                                                      \
    "-c DateStyle=ISO -c IntervalStyle=postgres -c extra_float_digits=3 -c TimeZone=UTC"

void pgconn_set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    size_t n;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    /* libpq messages end in a newline, and DETAIL/HINT add more; a log
     * entry must stay one line. */
    n = strlen(err);
    while (n > 0 && (err[n - 1] == '\n' || err[n - 1] == ' '))
        err[--n] = '\0';
    for (size_t i = 0; i < n; i++)
        if (err[i] == '\n' || err[i] == '\r' || err[i] == '\t')
            err[i] = ' ';
}

const char *pgconn_sqlstate(const PGresult *res)
{
    const char *s = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;

    return s != NULL ? s : "";
}

enum pgerr_kind pgconn_result_kind(PGconn *conn, const PGresult *res)
{
    if (PQstatus(conn) == CONNECTION_BAD)
        return PGERR_CONNECTION;
    return pgerr_classify(pgconn_sqlstate(res));
}

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Builds the parameters; false when the URL does not parse. */
static bool build(const struct pgconn_opts *o, struct pgparams *p)
{
    char *perr = NULL;
    PQconninfoOption *info = PQconninfoParse(o->dburl, &perr);
    char timeout[16];

    /* perr may quote the string, password included: it is not shown. */
    PQfreemem(perr);
    if (info == NULL)
        return false;
    pgparams_init(p);
    for (PQconninfoOption *opt = info; opt->keyword != NULL; opt++)
        if (opt->val != NULL)
            pgparams_set(p, opt->keyword, opt->val);
    PQconninfoFree(info);
    snprintf(timeout, sizeof(timeout), "%d", o->connect_timeout_s);
    pgparams_default(p, "connect_timeout", timeout);
    pgparams_default(p, "keepalives", "1");
    pgparams_default(p, "keepalives_idle", "10");
    pgparams_default(p, "keepalives_interval", "5");
    pgparams_default(p, "keepalives_count", "3");
    if (o->application_name != NULL)
        pgparams_default(p, "application_name", o->application_name);
    if (o->replication)
        pgparams_set(p, "replication", "database");
    pgparams_pin_session(p, NULL, NULL, RELAY_SESSION_OPTIONS);
    return true;
}

/* Runs the handshake; returns PGCONN_OK, PGCONN_ESTOP, or PGCONN_ERETRY
 * with err set when it timed out (any other failure leaves the connection
 * CONNECTION_BAD for the caller to classify). */
static enum pgconn_status handshake(PGconn *conn, int timeout_s, int stop_fd, char *err,
                                    size_t errlen)
{
    PostgresPollingStatusType ps = PGRES_POLLING_WRITING;
    int64_t deadline = timeout_s > 0 ? mono_ms() + (int64_t)timeout_s * 1000 : -1;

    while (ps != PGRES_POLLING_OK && ps != PGRES_POLLING_FAILED) {
        struct pollfd pfd[2] = {
            {.fd = PQsocket(conn), .events = ps == PGRES_POLLING_READING ? POLLIN : POLLOUT},
            {.fd = stop_fd, .events = POLLIN}};
        int wait_ms = deadline < 0 ? -1 : (int)(deadline - mono_ms());
        int n;

        if (deadline >= 0 && wait_ms <= 0) {
            pgconn_set_err(err, errlen, "timeout expired after %d s (connect_timeout)", timeout_s);
            return PGCONN_ERETRY;
        }
        n = poll(pfd, stop_fd >= 0 ? 2 : 1, wait_ms);
        if (n < 0 && errno == EINTR)
            continue;
        if (n > 0 && stop_fd >= 0 && pfd[1].revents != 0)
            return PGCONN_ESTOP;
        if (n == 0)
            continue; /* the deadline check above decides */
        ps = PQconnectPoll(conn);
    }
    return PQstatus(conn) == CONNECTION_OK ? PGCONN_OK : PGCONN_ERETRY;
}

/* Why a handshake failed, from the server's SQLSTATE when it sent one. */
static enum pgconn_status classify_failure(PGconn *conn, bool replication, char *err, size_t errlen)
{
    char *msg = xstrdup(PQerrorMessage(conn));
    char code[PGERR_SQLSTATE_LEN + 1];
    enum pgconn_status st = PGCONN_ERETRY;
    const char *hint = "";

    pgerr_drop_location(msg);
    for (size_t n = strlen(msg); n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '); n--)
        msg[n - 1] = '\0';
    if (pgerr_sqlstate_in_message(msg, code)) {
        enum pgerr_kind kind = pgerr_classify(code);

        if (kind == PGERR_LOGIN || kind == PGERR_PERMANENT || kind == PGERR_SCHEMA)
            st = PGCONN_EFATAL;
        /* 42501 at login: no REPLICATION attribute (walsender) or no CONNECT. */
        if (strcmp(code, "42501") == 0)
            hint = replication ? " (the role needs the REPLICATION attribute, ALTER ROLE <name> "
                                 "REPLICATION, and CONNECT on the database)"
                               : " (the role needs CONNECT on the database)";
    } else if (PQconnectionNeedsPassword(conn)) {
        /* The server asked for a password and the URL gave none: no retry
         * will find one. */
        st = PGCONN_EFATAL;
        hint = " (put the password in the URL or a password file)";
    }
    pgconn_set_err(err, errlen, "%s%s", msg, hint);
    free(msg);
    return st;
}

PGconn *pgconn_start(const struct pgconn_opts *o, int *timeout_s, enum pgconn_status *st, char *err,
                     size_t errlen)
{
    struct pgparams p;
    PGconn *conn;
    const char *timeout;

    if (!build(o, &p)) {
        pgconn_set_err(err, errlen,
                       "the database URL is not a valid libpq connection URI or key=value string");
        *st = PGCONN_EFATAL;
        return NULL;
    }
    conn = PQconnectStartParams(p.keys, p.vals, 0);
    timeout = pgparams_get(&p, "connect_timeout");
    *timeout_s = timeout ? atoi(timeout) : 0;
    /* libpq treats a connect_timeout of 1 as 2 */
    if (*timeout_s == 1)
        *timeout_s = 2;
    pgparams_fini(&p);
    if (conn == NULL) {
        pgconn_set_err(err, errlen, "out of memory");
        *st = PGCONN_ERETRY;
        return NULL;
    }
    /* Before the handshake: a server error during it is then formatted with
     * its SQLSTATE. */
    PQsetErrorVerbosity(conn, PQERRORS_VERBOSE);
    *st = PGCONN_OK;
    return conn;
}

enum pgconn_status pgconn_established(PGconn *conn, bool replication, char *err, size_t errlen)
{
    const char *server_encoding, *client_encoding;

    if (PQstatus(conn) != CONNECTION_OK)
        return classify_failure(conn, replication, err, errlen);
    PQsetErrorVerbosity(conn, PQERRORS_DEFAULT);
    client_encoding = PQparameterStatus(conn, "client_encoding");
    server_encoding = PQparameterStatus(conn, "server_encoding");
    if (client_encoding == NULL || strcmp(client_encoding, PGPARAMS_CLIENT_ENCODING) != 0) {
        pgconn_set_err(err, errlen,
                       "the server kept client_encoding %s, not " PGPARAMS_CLIENT_ENCODING
                       " as asked (a connection pooler?): text would not reach Kafka as stored",
                       client_encoding ? client_encoding : "(unknown)");
        return PGCONN_EFATAL;
    }
    if (server_encoding != NULL && strcmp(server_encoding, "SQL_ASCII") == 0) {
        /* SQL_ASCII stores whatever bytes each client sent, unchecked and
         * unconverted: nothing says what encoding a row's text is in, so the
         * relay cannot promise UTF-8 to consumers. */
        pgconn_set_err(err, errlen,
                       "database \"%s\" has encoding SQL_ASCII, which stores bytes without "
                       "saying their encoding; the relay needs a real encoding (UTF8 is best): "
                       "move the data to a database created with ENCODING 'UTF8'",
                       PQdb(conn));
        return PGCONN_EFATAL;
    }
    return PGCONN_OK;
}

PGconn *pgconn_open(const struct pgconn_opts *o, enum pgconn_status *st, char *err, size_t errlen)
{
    int timeout_s;
    PGconn *conn = pgconn_start(o, &timeout_s, st, err, errlen);

    if (conn == NULL)
        return NULL;
    *st = PQstatus(conn) == CONNECTION_BAD ? PGCONN_ERETRY
                                           : handshake(conn, timeout_s, o->stop_fd, err, errlen);
    if (*st == PGCONN_ESTOP || (*st == PGCONN_ERETRY && PQstatus(conn) != CONNECTION_BAD)) {
        if (*st == PGCONN_ESTOP)
            pgconn_set_err(err, errlen, "stopped while connecting");
        PQfinish(conn);
        return NULL;
    }
    *st = pgconn_established(conn, o->replication, err, errlen);
    if (*st != PGCONN_OK) {
        PQfinish(conn);
        return NULL;
    }
    return conn;
}
