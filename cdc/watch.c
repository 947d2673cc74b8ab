/*
 * Two ordinary connections beside the replication stream, each kept open and
 * driven without blocking from the stream loop: connected with
 * PQconnectStartParams/PQconnectPoll (only when poll() says the socket is
 * ready for what PQconnectPoll asked), queries sent with PQsendQueryParams on
 * a non-blocking connection, answers read with PQconsumeInput and PQisBusy,
 * PQgetResult only once it cannot block. A connection that fails is closed;
 * the next check or beat opens a new one. (libpq resolves a host name inside
 * PQconnectStartParams: a numeric hostaddr avoids even that wait.)
 */
#include "watch.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "pgconn.h"
#include "xmem.h"

enum side_state { SIDE_CLOSED, SIDE_CONNECTING, SIDE_IDLE, SIDE_BUSY };

/* One side connection and its one query at a time. */
struct side {
    const char *application_name;
    PGconn *conn;
    enum side_state state;
    PostgresPollingStatusType wants; /* while connecting: what PQconnectPoll waits for */
    int64_t deadline_ms;             /* connect_timeout; 0: none */
    int timeout_s;
    bool flushing;  /* the query is not all sent yet */
    PGresult *last; /* the query's last result so far */
};

struct watch {
    const struct repl_opts *opts;
    struct side check, heartbeat;
    bool check_wanted; /* a check started and its query is not sent yet */
    bool beat_wanted;
    /* a connection that could not even start, reported at the next result */
    char check_failed[768], beat_failed[768];
};

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void side_close(struct side *sd)
{
    PQclear(sd->last);
    PQfinish(sd->conn);
    sd->last = NULL;
    sd->conn = NULL;
    sd->state = SIDE_CLOSED;
    sd->flushing = false;
}

/* Starts connecting; false with err ("cannot connect to Postgres: ...")
 * when even that failed. */
static bool side_open(const struct watch *w, struct side *sd, char *err, size_t errlen)
{
    struct pgconn_opts co = {
        .dburl = w->opts->dburl,
        .application_name = sd->application_name,
        .connect_timeout_s = w->opts->connect_timeout_s,
        .stop_fd = -1,
    };
    enum pgconn_status st;
    char why[640];

    sd->conn = pgconn_start(&co, &sd->timeout_s, &st, why, sizeof(why));
    if (sd->conn != NULL && PQstatus(sd->conn) == CONNECTION_BAD) {
        (void)pgconn_established(sd->conn, false, why, sizeof(why));
        side_close(sd);
    }
    if (sd->conn == NULL) {
        pgconn_set_err(err, errlen, "cannot connect to Postgres: %s", why);
        return false;
    }
    sd->state = SIDE_CONNECTING;
    sd->wants = PGRES_POLLING_WRITING; /* as if PQconnectPoll had said so */
    sd->deadline_ms = sd->timeout_s > 0 ? mono_ms() + (int64_t)sd->timeout_s * 1000 : 0;
    return true;
}

/* Whether the socket is ready for events now (an error or hang-up counts:
 * libpq then finds it), without waiting. */
static bool side_ready(const struct side *sd, short events)
{
    struct pollfd pfd = {.fd = PQsocket(sd->conn), .events = events};

    return poll(&pfd, 1, 0) > 0;
}

/* Advances the handshake, the sending and the reading as far as they go
 * without waiting. Returns false with err when the connection failed (then
 * closed); connecting says whether the handshake was where it failed. */
static bool side_step(struct side *sd, bool *connecting, char *err, size_t errlen)
{
    *connecting = sd->state == SIDE_CONNECTING;
    if (sd->state == SIDE_CONNECTING) {
        while (sd->wants != PGRES_POLLING_OK && sd->wants != PGRES_POLLING_FAILED) {
            if (!side_ready(sd, sd->wants == PGRES_POLLING_READING ? POLLIN : POLLOUT)) {
                if (sd->deadline_ms == 0 || mono_ms() < sd->deadline_ms)
                    return true;
                pgconn_set_err(err, errlen,
                               "cannot connect to Postgres: timeout expired after %d s "
                               "(connect_timeout)",
                               sd->timeout_s);
                side_close(sd);
                return false;
            }
            sd->wants = PQconnectPoll(sd->conn);
        }
        if (pgconn_established(sd->conn, false, err, errlen) != PGCONN_OK ||
            PQsetnonblocking(sd->conn, 1) != 0) {
            char why[640];

            snprintf(why, sizeof(why), "%s", err);
            pgconn_set_err(err, errlen, "cannot connect to Postgres: %s", why);
            side_close(sd);
            return false;
        }
        sd->state = SIDE_IDLE;
    }
    if (sd->state != SIDE_BUSY)
        return true;
    if (sd->flushing) {
        int left = PQflush(sd->conn);

        if (left < 0)
            goto failed;
        sd->flushing = left == 1;
    }
    if (side_ready(sd, POLLIN) && PQconsumeInput(sd->conn) == 0)
        goto failed;
    return true;
failed:
    pgconn_set_err(err, errlen, "%s", PQerrorMessage(sd->conn));
    side_close(sd);
    return false;
}

static bool side_send(struct side *sd, const char *sql, int nparams, const char *const *params)
{
    int left;

    if (!PQsendQueryParams(sd->conn, sql, nparams, NULL, params, NULL, NULL, 0))
        return false;
    sd->state = SIDE_BUSY;
    left = PQflush(sd->conn);
    sd->flushing = left == 1;
    return left >= 0;
}

/* The query's outcome once every result is in (true, *res the last one, for
 * the caller to PQclear), or false while it is still running. */
static bool side_done(struct side *sd, PGresult **res)
{
    PGresult *r;

    if (sd->state != SIDE_BUSY || sd->flushing)
        return false;
    for (;;) {
        if (PQisBusy(sd->conn))
            return false;
        r = PQgetResult(sd->conn);
        if (r == NULL)
            break;
        PQclear(sd->last);
        sd->last = r;
    }
    *res = sd->last;
    sd->last = NULL;
    sd->state = SIDE_IDLE;
    return true;
}

struct watch *watch_new(const struct repl_opts *opts)
{
    struct watch *w = xcalloc(1, sizeof(*w));

    w->opts = opts;
    w->check.application_name = "cdc-relay-check";
    w->heartbeat.application_name = "cdc-relay-heartbeat";
    return w;
}

void watch_free(struct watch *w)
{
    if (w == NULL)
        return;
    side_close(&w->check);
    side_close(&w->heartbeat);
    free(w);
}

static int add_pollfd(const struct side *sd, struct pollfd *pfd)
{
    short events = 0;

    if (sd->state == SIDE_CONNECTING)
        events = sd->wants == PGRES_POLLING_READING ? POLLIN : POLLOUT;
    else if (sd->state == SIDE_BUSY)
        events = POLLIN | (sd->flushing ? POLLOUT : 0);
    if (events == 0)
        return 0;
    *pfd = (struct pollfd){.fd = PQsocket(sd->conn), .events = events};
    return 1;
}

static int pollfds(void *arg, struct pollfd *pfd, int n)
{
    struct watch *w = arg;
    int used = 0;

    if (used < n)
        used += add_pollfd(&w->check, &pfd[used]);
    if (used < n)
        used += add_pollfd(&w->heartbeat, &pfd[used]);
    return used;
}

/* ---- the publication check (docs/protocol.md#r10) ------------------------ */

static void check_start(void *arg)
{
    struct watch *w = arg;

    w->check_wanted = true;
    w->check_failed[0] = '\0';
    if (w->check.state == SIDE_CLOSED)
        (void)side_open(w, &w->check, w->check_failed, sizeof(w->check_failed));
}

static enum relay_check check_result(void *arg, char *err, size_t errlen)
{
    /* Whether the publication is there at all tells a DROP PUBLICATION
     * (recovered with a new slot) from a table taken out of it. */
    static const char sql[] =
        "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables "
        "WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)";
    struct watch *w = arg;
    const struct repl_opts *o = w->opts;
    enum relay_check outcome = RELAY_CHECK_FAILED;
    PGresult *res = NULL;
    bool connecting;

    if (w->check_failed[0] != '\0') {
        /* A check that cannot connect is retried at the next interval; the
         * replication connection is the one that reports a bad login. */
        pgconn_set_err(err, errlen, "publication check: %s", w->check_failed);
        w->check_failed[0] = '\0';
        w->check_wanted = false;
        return RELAY_CHECK_FAILED;
    }
    if (!side_step(&w->check, &connecting, err, errlen)) {
        char why[768];

        snprintf(why, sizeof(why), "%s", err);
        pgconn_set_err(err, errlen,
                       connecting ? "publication check: %s" : "publication check failed: %s", why);
        w->check_wanted = false;
        return RELAY_CHECK_FAILED;
    }
    if (w->check.state == SIDE_IDLE && w->check_wanted) {
        const char *params[] = {o->publication, o->table_schema, o->table_name};

        w->check_wanted = false;
        if (!side_send(&w->check, sql, 3, params)) {
            pgconn_set_err(err, errlen, "publication check failed: %s",
                           PQerrorMessage(w->check.conn));
            side_close(&w->check);
            return RELAY_CHECK_FAILED;
        }
    }
    if (!side_done(&w->check, &res))
        return RELAY_CHECK_RUNNING;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 2) {
        pgconn_set_err(err, errlen, "publication check failed: %s", PQerrorMessage(w->check.conn));
        side_close(&w->check);
    } else if (strcmp(PQgetvalue(res, 0, 1), "t") == 0) {
        outcome = RELAY_CHECK_PASSED;
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        outcome = RELAY_CHECK_GONE;
        pgconn_set_err(
            err, errlen,
            "publication \"%s\" does not exist (dropped while the relay ran): inserts into "
            "%s.%s since then were not streamed, and are not confirmed; recover as in "
            "docs/operations.md#publication-dropped",
            o->publication, o->table_schema, o->table_name);
    } else {
        outcome = RELAY_CHECK_GONE;
        pgconn_set_err(
            err, errlen,
            "table %s.%s is no longer in publication \"%s\" (altered or dropped while the relay "
            "ran): its inserts since then were not streamed, and are not confirmed; add the "
            "table back, relay the missing rows from the outbox table, then restart",
            o->table_schema, o->table_name, o->publication);
    }
    PQclear(res);
    return outcome;
}

/* ---- the heartbeat (docs/protocol.md#p1) ---------------------------------- */

static void beat(void *arg)
{
    struct watch *w = arg;

    if (w->heartbeat.state == SIDE_BUSY)
        return; /* the last one is still running: skip this beat */
    w->beat_wanted = true;
    if (w->heartbeat.state == SIDE_CLOSED &&
        !side_open(w, &w->heartbeat, w->beat_failed, sizeof(w->beat_failed)))
        w->beat_wanted = false;
}

static enum repl_status beat_progress(void *arg, char *err, size_t errlen)
{
    /* Non-transactional: written to WAL at once, decoded when read, no
     * transaction to commit (docs/protocol.md#p1; PG15 has the 3-argument form). */
    static const char sql[] = "SELECT pg_catalog.pg_logical_emit_message(false, "
                              "'cdc-relay-heartbeat', pg_catalog.now()::text)";
    struct watch *w = arg;
    PGresult *res = NULL;
    bool connecting;

    if (w->beat_failed[0] != '\0') {
        pgconn_set_err(err, errlen, "heartbeat connection failed: %s", w->beat_failed);
        w->beat_failed[0] = '\0';
        return REPL_ERETRY;
    }
    if (!side_step(&w->heartbeat, &connecting, err, errlen)) {
        char why[768];

        snprintf(why, sizeof(why), "%s", err);
        pgconn_set_err(err, errlen,
                       connecting
                           ? "heartbeat connection failed: %s"
                           : "heartbeat connection failed: %s; reconnecting at the next beat",
                       why);
        w->beat_wanted = false;
        return REPL_ERETRY;
    }
    if (side_done(&w->heartbeat, &res)) {
        bool ok = PQresultStatus(res) == PGRES_TUPLES_OK;

        if (!ok)
            pgconn_set_err(err, errlen, "heartbeat failed: %s; reconnecting at the next beat",
                           PQresultErrorMessage(res));
        PQclear(res);
        if (!ok) {
            side_close(&w->heartbeat);
            return REPL_ERETRY;
        }
    }
    if (w->heartbeat.state == SIDE_IDLE && w->beat_wanted) {
        w->beat_wanted = false;
        if (!side_send(&w->heartbeat, sql, 0, NULL)) {
            pgconn_set_err(err, errlen, "heartbeat failed: %s; reconnecting at the next beat",
                           PQerrorMessage(w->heartbeat.conn));
            side_close(&w->heartbeat);
            return REPL_ERETRY;
        }
    }
    return REPL_OK;
}

const struct relay_watch_ops watch_ops = {pollfds, check_start, check_result, beat, beat_progress};
