/*
 * libpq connection pool and order queries (see store_pg.h).
 * A checked-out connection is used outside the pool lock; the lock only guards
 * the busy flags. Must never log a connection string or a password, and never
 * retry a write that may have reached the server.
 */
#include "store_pg.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgerr.h"
#include "pgparams.h"
#include "pgsession.h"
#include "store_sql.h"
#include "xmem.h"

#define STMT_CREATE       "order_create"
#define STMT_CREATE_KEYED "order_create_keyed"
#define STMT_KEY_GET      "idempotency_key_get"
#define STMT_GET          "order_get"

/* Tries of a keyed create: serialization failures, and a key pruned between its statements. */
#define KEYED_ATTEMPTS 3

struct pool_conn {
    PGconn *conn;
    bool busy;
    bool prepared;       /* statements exist on this session */
    bool doomed;         /* the server said FATAL while we were idle: reconnect */
    uint64_t gen;        /* st->session_gen when this session was made */
    uint64_t want_gen;   /* st->session_gen at checkout (copied under mu) */
    int64_t retry_at_us; /* no reconnect attempt before this (monotonic) */
    char last_err[STORE_ERR_MAX];
};

struct store_pg {
    struct pgparams params;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pool_conn *conns;
    int n;
    int busy_n;                   /* connections checked out; under mu */
    struct api_metrics_hist wait; /* every checkout's wait; under mu */
    uint64_t wait_timeouts;       /* checkouts that gave up; under mu */
    int timeout_ms;
    enum store_outbox_mode outbox_mode;
    uint64_t session_gen;        /* sessions older than this are replaced; under mu */
    int64_t sessions_renewed_us; /* when session_gen last moved; under mu */
};

int store_pg_describe(const char *url, char *desc, size_t desclen, char *errbuf, size_t errlen)
{
    PQconninfoOption *info = pgsession_parse_url(url, errbuf, errlen);
    const char *host = NULL, *port = NULL, *dbname = NULL, *user = NULL;

    if (info == NULL)
        return -1;
    for (PQconninfoOption *o = info; o->keyword != NULL; o++) {
        if (strcmp(o->keyword, "host") == 0 ||
            (host == NULL && strcmp(o->keyword, "hostaddr") == 0))
            host = o->val;
        else if (strcmp(o->keyword, "port") == 0)
            port = o->val;
        else if (strcmp(o->keyword, "dbname") == 0)
            dbname = o->val;
        else if (strcmp(o->keyword, "user") == 0)
            user = o->val;
    }
    /* Unset values fall back to libpq's PG* environment and defaults at connect time. */
    snprintf(desc, desclen, "host=%s port=%s dbname=%s user=%s", host ? host : "(default)",
             port ? port : "(default)", dbname ? dbname : "(default)", user ? user : "(default)");
    PQconninfoFree(info);
    return 0;
}

/*
 * pgsession_classify() for a pooled connection. A session-state error (read-only from
 * default_transaction_read_only, which a session takes at its start) means
 * every session made under the same settings has it: all of them are
 * replaced at their next checkout, at most once per STORE_PG_RECONNECT_MS, so
 * the api recovers by itself once the setting is removed.
 */
static enum store_status classify_pooled(struct store_pg *st, const struct pool_conn *pc,
                                         const PGresult *res, const char *what, char *errbuf,
                                         size_t errlen)
{
    enum store_status s = pgsession_classify(pc->conn, res, what, errbuf, errlen);

    if (PQstatus(pc->conn) == CONNECTION_OK &&
        pgerr_classify(res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL) ==
            PGERR_SESSION) {
        int64_t now = pgsession_now_us();

        pthread_mutex_lock(&st->mu);
        if (now - st->sessions_renewed_us >= (int64_t)STORE_PG_RECONNECT_MS * 1000) {
            st->sessions_renewed_us = now;
            st->session_gen++;
        }
        pthread_mutex_unlock(&st->mu);
    }
    return s;
}

static enum store_status prepare_all(struct store_pg *st, struct pool_conn *pc, char *errbuf,
                                     size_t errlen)
{
    bool message = st->outbox_mode == STORE_OUTBOX_MESSAGE;
    const struct {
        const char *name, *sql;
        int nparams;
    } stmts[] = {
        {STMT_CREATE, message ? store_sql_create_message : store_sql_create_table, 3},
        {STMT_CREATE_KEYED, message ? store_sql_create_keyed_message : store_sql_create_keyed_table,
         5},
        {STMT_KEY_GET, store_sql_key_get, 1},
        {STMT_GET, store_sql_get, 1},
    };

    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        PGresult *res = PQprepare(pc->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        enum store_status s = STORE_OK;

        /* 42P05: prepared by an earlier, partly failed attempt on this session. */
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !pgsession_sqlstate_is(res, "42P05")) {
            s = classify_pooled(st, pc, res, "prepare", errbuf, errlen);
            /* 42P01, 3F000; 42703: outbox.traceparent before migration 5 */
            if (pgerr_classify(PQresultErrorField(res, PG_DIAG_SQLSTATE)) == PGERR_SCHEMA)
                pgsession_flatten(errbuf, errlen,
                                  "schema not migrated (run orders-api --migrate): ",
                                  PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY));
        }
        PQclear(res);
        if (s != STORE_OK)
            return s;
    }
    pc->prepared = true;
    return STORE_OK;
}

/*
 * Makes a checked-out slot usable: notices a server-closed idle session before
 * sending anything on it, (re)connects at most every STORE_PG_RECONNECT_MS, and
 * prepares the statements once per session.
 */
static enum store_status conn_ready(struct store_pg *st, struct pool_conn *pc, char *errbuf,
                                    size_t errlen)
{
    if (pc->conn != NULL && PQstatus(pc->conn) == CONNECTION_OK) {
        /*
         * Reads (without blocking) whatever the server sent while we were idle;
         * PQisBusy parses it, so a FATAL reaches pgsession_notice and an EOF
         * turns the status bad.
         */
        if (PQconsumeInput(pc->conn) == 1)
            (void)PQisBusy(pc->conn);
    }
    if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK || pc->doomed ||
        pc->gen != pc->want_gen) {
        int64_t now = pgsession_now_us();

        if (now < pc->retry_at_us) {
            pgsession_flatten(errbuf, errlen, "database unavailable: ", pc->last_err);
            return STORE_UNAVAILABLE;
        }
        pc->prepared = false;
        pc->doomed = false;
        if (pc->conn == NULL)
            pc->conn = PQconnectdbParams(st->params.keys, st->params.vals, 0);
        else
            PQreset(pc->conn);
        if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK) {
            pgsession_flatten(pc->last_err, sizeof(pc->last_err), "",
                              pc->conn != NULL ? PQerrorMessage(pc->conn) : "out of memory");
            pc->retry_at_us = pgsession_now_us() + (int64_t)STORE_PG_RECONNECT_MS * 1000;
            pgsession_flatten(errbuf, errlen, "database unavailable: ", pc->last_err);
            return STORE_UNAVAILABLE;
        }
        PQsetNoticeReceiver(pc->conn, pgsession_notice, &pc->doomed);
        pc->retry_at_us = 0;
        pc->gen = pc->want_gen;
    }
    if (!pc->prepared)
        return prepare_all(st, pc, errbuf, errlen);
    return STORE_OK;
}

/*
 * Waits up to timeout_ms for a free slot. Returns NULL on timeout. Records the
 * wait for /metrics; only a checkout that had to wait reads the clock again.
 */
static struct pool_conn *checkout(struct store_pg *st)
{
    struct pool_conn *pc = NULL;
    struct timespec start, deadline, end;
    bool waited = false;
    uint64_t wait_us = 0;

    clock_gettime(CLOCK_MONOTONIC, &start);
    deadline = start;
    deadline.tv_sec += st->timeout_ms / 1000;
    deadline.tv_nsec += (long)(st->timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&st->mu);
    for (;;) {
        for (int i = 0; i < st->n; i++) {
            if (!st->conns[i].busy) {
                pc = &st->conns[i];
                pc->busy = true;
                pc->want_gen = st->session_gen;
                st->busy_n++;
                goto out;
            }
        }
        waited = true;
        if (pthread_cond_timedwait(&st->cv, &st->mu, &deadline) == ETIMEDOUT)
            break;
    }
out:
    if (waited) {
        clock_gettime(CLOCK_MONOTONIC, &end);
        wait_us = (uint64_t)((int64_t)(end.tv_sec - start.tv_sec) * 1000000 +
                             (end.tv_nsec - start.tv_nsec) / 1000);
    }
    api_metrics_hist_observe(&st->wait, wait_us);
    if (pc == NULL)
        st->wait_timeouts++;
    pthread_mutex_unlock(&st->mu);
    return pc;
}

static void checkin(struct store_pg *st, struct pool_conn *pc)
{
    pthread_mutex_lock(&st->mu);
    pc->busy = false;
    st->busy_n--;
    pthread_cond_signal(&st->cv);
    pthread_mutex_unlock(&st->mu);
}

static enum store_status busy_error(const struct store_pg *st, char *errbuf, size_t errlen)
{
    snprintf(errbuf, errlen, "no database connection free within %d ms", st->timeout_ms);
    return STORE_UNAVAILABLE;
}

/* Copies row 0 (id, json) of a two-column result into *out. */
static enum store_status take_row(PGresult *res, struct store_order *out, char *errbuf,
                                  size_t errlen)
{
    if (PQnfields(res) != 2 || PQntuples(res) != 1 || PQgetlength(res, 0, 0) != ORDERS_ID_LEN) {
        snprintf(errbuf, errlen, "unexpected result shape: %d rows, %d columns", PQntuples(res),
                 PQnfields(res));
        return STORE_ERROR;
    }
    memcpy(out->id, PQgetvalue(res, 0, 0), ORDERS_ID_LEN);
    out->id[ORDERS_ID_LEN] = '\0';
    out->json = xstrdup(PQgetvalue(res, 0, 1));
    return STORE_OK;
}

static bool retryable(const PGresult *res)
{
    return pgsession_sqlstate_is(res, "40001") || pgsession_sqlstate_is(res, "40P01");
}

/* The fast path, without a key: one statement, (id, payload) back. */
static enum store_status create_plain(struct store_pg *st, struct pool_conn *pc,
                                      const char *const values[3], struct store_created *out,
                                      char *errbuf, size_t errlen)
{
    enum store_status s = STORE_UNAVAILABLE;

    /* Retried only on serialization failure or deadlock: the server rolled back. */
    for (int attempt = 0; attempt < 2; attempt++) {
        struct store_order order;
        PGresult *res;

        s = conn_ready(st, pc, errbuf, errlen);
        if (s != STORE_OK)
            break;
        res = PQexecPrepared(pc->conn, STMT_CREATE, 3, values, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            s = take_row(res, &order, errbuf, errlen);
            PQclear(res);
            if (s == STORE_OK) {
                out->http_status = 201;
                out->body = order.json;
                out->location = xmalloc(sizeof("/orders/") + ORDERS_ID_LEN);
                snprintf(out->location, sizeof("/orders/") + ORDERS_ID_LEN, "/orders/%s", order.id);
            }
            break;
        }
        s = classify_pooled(st, pc, res, "insert order", errbuf, errlen);
        if (!retryable(res)) {
            PQclear(res);
            break;
        }
        PQclear(res);
    }
    return s;
}

/*
 * Copies a stored answer (status, body, location) from row 0 of res, starting
 * at column col, into *out.
 */
static enum store_status take_answer(const PGresult *res, int col, struct store_created *out,
                                     char *errbuf, size_t errlen)
{
    long status;
    char *end;

    if (PQnfields(res) != col + 3 || PQntuples(res) != 1 || PQgetisnull(res, 0, col) ||
        PQgetisnull(res, 0, col + 1)) {
        snprintf(errbuf, errlen, "unexpected idempotency result shape: %d rows, %d columns",
                 PQntuples(res), PQnfields(res));
        return STORE_ERROR;
    }
    status = strtol(PQgetvalue(res, 0, col), &end, 10);
    if (*end != '\0' || status < 100 || status > 599) {
        snprintf(errbuf, errlen, "stored idempotent status is not an HTTP status");
        return STORE_ERROR;
    }
    out->http_status = (int)status;
    out->body = xstrdup(PQgetvalue(res, 0, col + 1));
    out->location = PQgetisnull(res, 0, col + 2) ? NULL : xstrdup(PQgetvalue(res, 0, col + 2));
    return STORE_OK;
}

/*
 * With an Idempotency-Key: the keyed insert, and if the key exists, a read of
 * its stored answer. After a zero-row insert nothing was written, so a key that
 * vanished in between (pruned) or a connection lost during the read is tried
 * again from the start; a failed insert is not (it may have committed).
 */
static enum store_status create_keyed(struct store_pg *st, struct pool_conn *pc,
                                      const char *const values[5],
                                      const struct store_idempotency *idem,
                                      struct store_created *out, char *errbuf, size_t errlen)
{
    enum store_status s = STORE_UNAVAILABLE;

    for (int attempt = 0; attempt < KEYED_ATTEMPTS; attempt++) {
        PGresult *res;

        s = conn_ready(st, pc, errbuf, errlen);
        if (s != STORE_OK)
            break;
        res = PQexecPrepared(pc->conn, STMT_CREATE_KEYED, 5, values, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            s = classify_pooled(st, pc, res, "insert order", errbuf, errlen);
            if (retryable(res)) {
                PQclear(res);
                continue;
            }
            PQclear(res);
            break;
        }
        if (PQntuples(res) != 0) {
            s = take_answer(res, 0, out, errbuf, errlen);
            PQclear(res);
            break;
        }
        /* Zero rows: the key exists (committed before us, or by the request we waited for). */
        PQclear(res);
        res = PQexecPrepared(pc->conn, STMT_KEY_GET, 1, &values[2], NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_TUPLES_OK) {
            s = classify_pooled(st, pc, res, "read idempotency key", errbuf, errlen);
            PQclear(res);
            /* We wrote nothing, so a lost connection may run the whole thing again. */
            if (PQstatus(pc->conn) != CONNECTION_OK)
                continue;
            break;
        }
        if (PQntuples(res) == 0) {
            PQclear(res);
            snprintf(errbuf, errlen, "idempotency key deleted while in use; tried %d times",
                     attempt + 1);
            s = STORE_UNAVAILABLE;
            continue;
        }
        if (PQnfields(res) >= 1 && strcmp(PQgetvalue(res, 0, 0), idem->request_hash) != 0) {
            PQclear(res);
            snprintf(errbuf, errlen, "Idempotency-Key reused with a different request");
            s = STORE_KEY_MISMATCH;
            break;
        }
        s = take_answer(res, 1, out, errbuf, errlen);
        out->replayed = s == STORE_OK;
        PQclear(res);
        break;
    }
    return s;
}

static enum store_status pg_order_create(void *store, const struct order_request *req,
                                         const struct store_idempotency *idem,
                                         struct store_created *out, char *errbuf, size_t errlen)
{
    struct store_pg *st = store;
    struct pool_conn *pc = checkout(st);
    enum store_status s;
    char qty[16];

    if (pc == NULL)
        return busy_error(st, errbuf, errlen);
    memset(out, 0, sizeof(*out));
    snprintf(qty, sizeof(qty), "%d", req->quantity);
    /* traceparent last ($3 plain, $5 keyed); NULL: none */
    if (idem == NULL) {
        const char *values[3] = {req->item, qty, req->traceparent};

        s = create_plain(st, pc, values, out, errbuf, errlen);
    } else {
        const char *values[5] = {req->item, qty, idem->key, idem->request_hash, req->traceparent};

        s = create_keyed(st, pc, values, idem, out, errbuf, errlen);
    }
    checkin(st, pc);
    return s;
}

/*
 * Runs a read (stmt, a prepared statement, or sql when stmt is NULL). A read
 * may run twice: if the session broke under it, it is reset and the read
 * tried once more. STORE_OK with *res (the caller PQclears it), else the
 * failure classified.
 */
static enum store_status run_read(struct store_pg *st, struct pool_conn *pc, const char *stmt,
                                  const char *sql, const char *const *values, const char *what,
                                  PGresult **res, char *errbuf, size_t errlen)
{
    enum store_status s = STORE_UNAVAILABLE;

    for (int attempt = 0; attempt < 2; attempt++) {
        s = conn_ready(st, pc, errbuf, errlen);
        if (s != STORE_OK)
            break;
        *res = stmt != NULL ? PQexecPrepared(pc->conn, stmt, 1, values, NULL, NULL, 0)
                            : PQexec(pc->conn, sql);
        if (PQresultStatus(*res) == PGRES_TUPLES_OK)
            return STORE_OK;
        s = classify_pooled(st, pc, *res, what, errbuf, errlen);
        PQclear(*res);
        *res = NULL;
        if (PQstatus(pc->conn) == CONNECTION_OK)
            break;
    }
    return s;
}

static enum store_status pg_order_get(void *store, const char *id, struct store_order *out,
                                      char *errbuf, size_t errlen)
{
    struct store_pg *st = store;
    struct pool_conn *pc = checkout(st);
    const char *values[1] = {id};
    PGresult *res = NULL;
    enum store_status s;

    if (pc == NULL)
        return busy_error(st, errbuf, errlen);
    s = run_read(st, pc, STMT_GET, NULL, values, "select order", &res, errbuf, errlen);
    if (s == STORE_OK)
        s = PQntuples(res) == 0 ? STORE_NOT_FOUND : take_row(res, out, errbuf, errlen);
    PQclear(res);
    checkin(st, pc);
    return s;
}

static enum store_status pg_ping(void *store, char *errbuf, size_t errlen)
{
    struct store_pg *st = store;
    struct pool_conn *pc = checkout(st);
    PGresult *res = NULL;
    enum store_status s;

    if (pc == NULL)
        return busy_error(st, errbuf, errlen);
    s = run_read(st, pc, NULL, "SELECT 1", NULL, "ping", &res, errbuf, errlen);
    if (s == STORE_OK && PQntuples(res) != 1) {
        snprintf(errbuf, errlen, "ping: %d rows", PQntuples(res));
        s = STORE_ERROR;
    }
    PQclear(res);
    checkin(st, pc);
    return s;
}

static void pg_pool_stats(void *store, struct api_metrics_pool *out)
{
    struct store_pg *st = store;

    pthread_mutex_lock(&st->mu);
    out->known = true;
    out->size = st->n;
    out->busy = st->busy_n;
    out->wait = st->wait;
    out->timeouts = st->wait_timeouts;
    pthread_mutex_unlock(&st->mu);
}

const struct store_ops store_pg_ops = {
    .order_create = pg_order_create,
    .order_get = pg_order_get,
    .ping = pg_ping,
    .pool_stats = pg_pool_stats,
};

struct store_pg *store_pg_open(const struct store_pg_options *opt, int *connected, char *errbuf,
                               size_t errlen)
{
    struct store_pg *st = xcalloc(1, sizeof(*st));
    pthread_condattr_t ca;

    *connected = 0;
    if (pgsession_params(&st->params, opt->database_url, opt->timeout_ms, true, errbuf, errlen) !=
        0) {
        free(st);
        return NULL;
    }
    st->n = opt->pool_size;
    st->timeout_ms = opt->timeout_ms;
    st->outbox_mode = opt->outbox_mode;
    st->conns = xcalloc((size_t)st->n, sizeof(*st->conns));
    pthread_mutex_init(&st->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&st->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < st->n; i++) {
        char err[STORE_ERR_MAX];

        if (conn_ready(st, &st->conns[i], err, sizeof(err)) == STORE_OK) {
            (*connected)++;
        } else if (i == 0) {
            /* Report the first failure; the others are almost always the same. */
            snprintf(errbuf, errlen, "%s", err);
        }
    }
    return st;
}

void store_pg_close(struct store_pg *st)
{
    if (st == NULL)
        return;
    for (int i = 0; i < st->n; i++)
        PQfinish(st->conns[i].conn);
    free(st->conns);
    pthread_cond_destroy(&st->cv);
    pthread_mutex_destroy(&st->mu);
    pgparams_fini(&st->params);
    free(st);
}

int store_pg_libpq_version(void)
{
    return PQlibVersion();
}
