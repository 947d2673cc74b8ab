/*
 * libpq connection pool, order queries and the migrator (see store_pg.h).
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
#include "xmem.h"

#define STMT_CREATE       "order_create"
#define STMT_CREATE_KEYED "order_create_keyed"
#define STMT_KEY_GET      "idempotency_key_get"
#define STMT_GET          "order_get"

/* Tries of a keyed create: serialization failures, and a key pruned between its statements. */
#define KEYED_ATTEMPTS 3

/*
 * One statement, so one implicit transaction: the order and its event commit
 * together or not at all. The payload is built by the server so the response
 * body and the Kafka value (pgoutput sends jsonb's text form) are the same bytes.
 */
static const char sql_create_table[] =
    "WITH o AS ("
    " INSERT INTO public.orders (id, item, quantity, status, created_at)"
    " VALUES (pg_catalog.gen_random_uuid(), $1::text, $2::int, 'created', pg_catalog.now())"
    " RETURNING id, item, quantity, status, created_at"
    "), e AS ("
    " INSERT INTO public.outbox (id, aggregate_type, aggregate_id, event_type, payload,"
    "  traceparent)"
    " SELECT pg_catalog.gen_random_uuid(), 'orders', o.id::text, 'OrderCreated',"
    "  pg_catalog.jsonb_build_object('id', o.id, 'item', o.item, 'quantity', o.quantity,"
    "   'status', o.status, 'created_at', o.created_at), $3::text"
    " FROM o"
    " RETURNING aggregate_id, payload"
    ") SELECT aggregate_id, payload::text FROM e";

/*
 * --outbox-mode message: the event is a transactional logical decoding message
 * (prefix "outbox") whose content is the outbox row as a JSON object, rendered
 * by jsonb: {"id": ..., "payload": {...}, "event_type": ..., "aggregate_id":
 * ..., "aggregate_type": ...}. Transactional, so it is decoded at the commit of
 * the order's transaction, in commit order, and never if it rolls back.
 */
#define SQL_EMIT_P                                                                                 \
    "pg_catalog.pg_logical_emit_message(true, 'outbox', pg_catalog.jsonb_build_object("            \
    " 'id', pg_catalog.gen_random_uuid(),"                                                         \
    " 'aggregate_type', 'orders', 'aggregate_id', p.id::text, 'event_type', 'OrderCreated',"       \
    " 'payload', p.payload, 'traceparent', p.traceparent)::text)"

/* MATERIALIZED and the lsn filter make sure the message is emitted before the row is returned. */
static const char sql_create_message[] =
    "WITH o AS ("
    " INSERT INTO public.orders (id, item, quantity, status, created_at)"
    " VALUES (pg_catalog.gen_random_uuid(), $1::text, $2::int, 'created', pg_catalog.now())"
    " RETURNING id, pg_catalog.jsonb_build_object('id', id, 'item', item, 'quantity', quantity,"
    "  'status', status, 'created_at', created_at) AS payload, $3::text AS traceparent"
    "), m AS MATERIALIZED ("
    " SELECT p.id, p.payload, " SQL_EMIT_P " AS lsn FROM o AS p"
    ") SELECT id::text, payload::text FROM m WHERE lsn IS NOT NULL";

/*
 * With an Idempotency-Key ($3, request hash $4). The order values and the
 * response body are computed first (r, p), so the key row (k) can be inserted
 * BEFORE the order, with the answer it stands for; the order (o) is inserted
 * only for a row k returned. If another transaction holds the same key
 * uncommitted, k's insert waits on the primary key until that one ends: commit
 * means a conflict (DO NOTHING, zero rows, nothing written), rollback means we
 * go ahead. Zero rows therefore always means "the key exists": the caller then
 * reads it with STMT_KEY_GET (a new statement, so a new snapshot that sees the
 * winner's commit). The first answer is k's RETURNING, the very row a replay
 * reads, so both are the same bytes.
 */
#define SQL_KEYED_HEAD                                                                             \
    "WITH r AS MATERIALIZED ("                                                                     \
    " SELECT pg_catalog.gen_random_uuid() AS id, $1::text AS item, $2::int AS quantity,"           \
    "  'created'::text AS status, pg_catalog.now() AS created_at, $5::text AS traceparent"         \
    "), p AS MATERIALIZED ("                                                                       \
    " SELECT r.id, r.item, r.quantity, r.status, r.created_at, r.traceparent,"                     \
    "  pg_catalog.jsonb_build_object('id', r.id, 'item', r.item, 'quantity', r.quantity,"          \
    "   'status', r.status, 'created_at', r.created_at) AS payload"                                \
    " FROM r"                                                                                      \
    "), k AS ("                                                                                    \
    " INSERT INTO public.idempotency_keys (key, request_hash, status, body, location)"             \
    " SELECT $3::text, $4::text, 201, p.payload::text, '/orders/' || p.id::text FROM p"            \
    " ON CONFLICT (key) DO NOTHING"                                                                \
    " RETURNING status, body, location"                                                            \
    "), o AS ("                                                                                    \
    " INSERT INTO public.orders (id, item, quantity, status, created_at)"                          \
    " SELECT p.id, p.item, p.quantity, p.status, p.created_at FROM p, k"                           \
    " RETURNING id"                                                                                \
    ")"

static const char sql_create_keyed_table[] =
    SQL_KEYED_HEAD ", e AS ("
                   " INSERT INTO public.outbox (id, aggregate_type, aggregate_id, event_type,"
                   "  payload, traceparent)"
                   " SELECT pg_catalog.gen_random_uuid(), 'orders', o.id::text, 'OrderCreated',"
                   "  p.payload, p.traceparent"
                   " FROM o, p"
                   " RETURNING id"
                   ") SELECT k.status, k.body, k.location FROM k, e";

/* FROM o, p: one row only if the order was inserted; o.id = p.id. */
static const char sql_create_keyed_message[] =
    SQL_KEYED_HEAD ", m AS MATERIALIZED ("
                   " SELECT " SQL_EMIT_P " AS lsn FROM o, p"
                   ") SELECT k.status, k.body, k.location FROM k, m WHERE m.lsn IS NOT NULL";

static const char sql_key_get[] =
    "SELECT request_hash, status, body, location FROM public.idempotency_keys"
    " WHERE key = $1::text";

static const char sql_get[] =
    "SELECT id::text, pg_catalog.jsonb_build_object('id', id, 'item', item, 'quantity', quantity,"
    " 'status', status, 'created_at', created_at)::text"
    " FROM public.orders WHERE id = $1::uuid";

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

static int64_t now_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * Copies a libpq message into buf on one line: newlines and tabs become
 * spaces, and double quotes single ones, so it fits a log's key="value".
 */
static void flatten(char *buf, size_t len, const char *prefix, const char *msg)
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
static void notice_receiver(void *arg, const PGresult *res)
{
    struct pool_conn *pc = arg;
    const char *sev = PQresultErrorField(res, PG_DIAG_SEVERITY_NONLOCALIZED);
    char line[STORE_ERR_MAX];

    if (pc != NULL && sev != NULL && (strcmp(sev, "FATAL") == 0 || strcmp(sev, "PANIC") == 0))
        pc->doomed = true;
    flatten(line, sizeof(line), "", PQresultErrorMessage(res));
    log_debug("postgres notice message=\"%s\"", line);
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
static int params_build(struct pgparams *p, const char *url, int timeout_ms, bool service,
                        char *errbuf, size_t errlen)
{
    PQconninfoOption *info;
    char *perr = NULL;
    char buf[64];
    int secs = (timeout_ms + 999) / 1000;

    info = PQconninfoParse(url, &perr);
    if (info == NULL) {
        /* perr may quote part of the string, password included: do not copy it. */
        PQfreemem(perr);
        flatten(errbuf, errlen, "", "not a valid libpq connection URI or key=value string");
        return -1;
    }
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

int store_pg_describe(const char *url, char *desc, size_t desclen, char *errbuf, size_t errlen)
{
    PQconninfoOption *info;
    char *perr = NULL;
    const char *host = NULL, *port = NULL, *dbname = NULL, *user = NULL;

    info = PQconninfoParse(url, &perr);
    if (info == NULL) {
        PQfreemem(perr);
        flatten(errbuf, errlen, "", "not a valid libpq connection URI or key=value string");
        return -1;
    }
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

static bool sqlstate_is(const PGresult *res, const char *code)
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
static enum store_status classify(PGconn *conn, const PGresult *res, const char *what, char *errbuf,
                                  size_t errlen)
{
    const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    const char *msg = res != NULL ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    char prefix[96];

    if (msg == NULL)
        msg = PQerrorMessage(conn);
    snprintf(prefix, sizeof(prefix), "%s: %s%s", what, state != NULL ? state : "",
             state != NULL ? " " : "");
    flatten(errbuf, errlen, prefix, msg);
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

/*
 * classify() for a pooled connection. A session-state error (read-only from
 * default_transaction_read_only, which a session takes at its start) means
 * every session made under the same settings has it: all of them are
 * replaced at their next checkout, at most once per STORE_PG_RECONNECT_MS, so
 * the api recovers by itself once the setting is removed.
 */
static enum store_status classify_pooled(struct store_pg *st, const struct pool_conn *pc,
                                         const PGresult *res, const char *what, char *errbuf,
                                         size_t errlen)
{
    enum store_status s = classify(pc->conn, res, what, errbuf, errlen);

    if (PQstatus(pc->conn) == CONNECTION_OK &&
        pgerr_classify(res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL) ==
            PGERR_SESSION) {
        int64_t now = now_us();

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
        {STMT_CREATE, message ? sql_create_message : sql_create_table, 3},
        {STMT_CREATE_KEYED, message ? sql_create_keyed_message : sql_create_keyed_table, 5},
        {STMT_KEY_GET, sql_key_get, 1},
        {STMT_GET, sql_get, 1},
    };

    for (size_t i = 0; i < sizeof(stmts) / sizeof(stmts[0]); i++) {
        PGresult *res = PQprepare(pc->conn, stmts[i].name, stmts[i].sql, stmts[i].nparams, NULL);
        enum store_status s = STORE_OK;

        /* 42P05: prepared by an earlier, partly failed attempt on this session. */
        if (PQresultStatus(res) != PGRES_COMMAND_OK && !sqlstate_is(res, "42P05")) {
            s = classify_pooled(st, pc, res, "prepare", errbuf, errlen);
            /* 42P01, 3F000; 42703: outbox.traceparent before migration 5 */
            if (pgerr_classify(PQresultErrorField(res, PG_DIAG_SQLSTATE)) == PGERR_SCHEMA)
                flatten(errbuf, errlen, "schema not migrated (run orders-api --migrate): ",
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
         * PQisBusy parses it, so a FATAL reaches notice_receiver and an EOF
         * turns the status bad.
         */
        if (PQconsumeInput(pc->conn) == 1)
            (void)PQisBusy(pc->conn);
    }
    if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK || pc->doomed ||
        pc->gen != pc->want_gen) {
        int64_t now = now_us();

        if (now < pc->retry_at_us) {
            flatten(errbuf, errlen, "database unavailable: ", pc->last_err);
            return STORE_UNAVAILABLE;
        }
        pc->prepared = false;
        pc->doomed = false;
        if (pc->conn == NULL)
            pc->conn = PQconnectdbParams(st->params.keys, st->params.vals, 0);
        else
            PQreset(pc->conn);
        if (pc->conn == NULL || PQstatus(pc->conn) != CONNECTION_OK) {
            flatten(pc->last_err, sizeof(pc->last_err), "",
                    pc->conn != NULL ? PQerrorMessage(pc->conn) : "out of memory");
            pc->retry_at_us = now_us() + (int64_t)STORE_PG_RECONNECT_MS * 1000;
            flatten(errbuf, errlen, "database unavailable: ", pc->last_err);
            return STORE_UNAVAILABLE;
        }
        PQsetNoticeReceiver(pc->conn, notice_receiver, pc);
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
    return sqlstate_is(res, "40001") || sqlstate_is(res, "40P01");
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

static enum store_status pg_order_get(void *store, const char *id, struct store_order *out,
                                      char *errbuf, size_t errlen)
{
    struct store_pg *st = store;
    struct pool_conn *pc = checkout(st);
    enum store_status s = STORE_UNAVAILABLE;
    const char *values[1] = {id};

    if (pc == NULL)
        return busy_error(st, errbuf, errlen);
    /* A read is idempotent: if the session broke under us, reset it and try once more. */
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *res;

        s = conn_ready(st, pc, errbuf, errlen);
        if (s != STORE_OK)
            break;
        res = PQexecPrepared(pc->conn, STMT_GET, 1, values, NULL, NULL, 0);
        if (PQresultStatus(res) == PGRES_TUPLES_OK) {
            s = PQntuples(res) == 0 ? STORE_NOT_FOUND : take_row(res, out, errbuf, errlen);
            PQclear(res);
            break;
        }
        s = classify_pooled(st, pc, res, "select order", errbuf, errlen);
        PQclear(res);
        if (PQstatus(pc->conn) == CONNECTION_OK)
            break;
    }
    checkin(st, pc);
    return s;
}

static enum store_status pg_ping(void *store, char *errbuf, size_t errlen)
{
    struct store_pg *st = store;
    struct pool_conn *pc = checkout(st);
    enum store_status s = STORE_UNAVAILABLE;

    if (pc == NULL)
        return busy_error(st, errbuf, errlen);
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *res;

        s = conn_ready(st, pc, errbuf, errlen);
        if (s != STORE_OK)
            break;
        res = PQexec(pc->conn, "SELECT 1");
        if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
            s = STORE_OK;
            PQclear(res);
            break;
        }
        s = classify_pooled(st, pc, res, "ping", errbuf, errlen);
        PQclear(res);
        if (PQstatus(pc->conn) == CONNECTION_OK)
            break;
    }
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
    if (params_build(&st->params, opt->database_url, opt->timeout_ms, true, errbuf, errlen) != 0) {
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

/* ---- migrations ---- */

/* Runs sql expecting a command or tuples result; on failure fills errbuf with what. */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *errbuf, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType rs = PQresultStatus(res);

    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
        classify(conn, res, what, errbuf, errlen);
        PQclear(res);
        return -1;
    }
    PQclear(res);
    return 0;
}

static int lock_call(PGconn *conn, const char *fn, bool *got, char *errbuf, size_t errlen)
{
    char sql[128];
    PGresult *res;

    snprintf(sql, sizeof(sql), "SELECT pg_catalog.%s(%lld)", fn,
             (long long)STORE_PG_MIGRATE_LOCK_KEY);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        classify(conn, res, fn, errbuf, errlen);
        PQclear(res);
        return -1;
    }
    if (got != NULL)
        *got = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return 0;
}

/* Column 0 of row r as an int (the server's text form of an int column). */
static int int_value(const PGresult *res, int r)
{
    return (int)strtol(PQgetvalue(res, r, 0), NULL, 10);
}

/* Applies one migration and records it, in one transaction. */
static int apply_one(PGconn *conn, const struct migration *m, char *errbuf, size_t errlen)
{
    char what[128], version[16];
    const char *values[2] = {version, m->name};
    PGresult *res;

    snprintf(what, sizeof(what), "migration %s failed", m->name);
    snprintf(version, sizeof(version), "%d", m->version);
    if (exec_ok(conn, "BEGIN", what, errbuf, errlen) != 0)
        return -1;
    /* Simple query protocol: a file may hold several statements; all run in our BEGIN. */
    if (exec_ok(conn, m->sql, what, errbuf, errlen) != 0)
        goto fail;
    res = PQexecParams(conn,
                       "INSERT INTO public.schema_migrations (version, name) VALUES ($1::int, $2)",
                       2, NULL, values, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        classify(conn, res, what, errbuf, errlen);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    if (exec_ok(conn, "COMMIT", what, errbuf, errlen) != 0)
        goto fail;
    return 0;
fail:
    /* Best effort: if the connection is gone the server rolls back anyway. */
    PQclear(PQexec(conn, "ROLLBACK"));
    return -1;
}

int store_pg_migrate(const char *database_url, int timeout_ms, const struct migration *migs,
                     int count, int *applied, int *version, char *errbuf, size_t errlen)
{
    struct pgparams params;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    bool got = false, locked = false;
    int rc = -1, max_embedded = 0;

    *applied = 0;
    *version = 0;
    if (params_build(&params, database_url, timeout_ms, false, errbuf, errlen) != 0)
        return -1;
    for (int i = 0; i < count; i++) {
        if (migs[i].version <= max_embedded) {
            snprintf(errbuf, errlen, "embedded migrations out of order at %s", migs[i].name);
            goto out;
        }
        max_embedded = migs[i].version;
    }
    conn = PQconnectdbParams(params.keys, params.vals, 0);
    if (conn == NULL || PQstatus(conn) != CONNECTION_OK) {
        flatten(errbuf, errlen,
                "cannot connect: ", conn != NULL ? PQerrorMessage(conn) : "out of memory");
        goto out;
    }
    PQsetNoticeReceiver(conn, notice_receiver, NULL);
    if (PQserverVersion(conn) < 130000) {
        snprintf(errbuf, errlen, "PostgreSQL 13 or newer is required (server is %d)",
                 PQserverVersion(conn));
        goto out;
    }
    if (lock_call(conn, "pg_try_advisory_lock", &got, errbuf, errlen) != 0)
        goto out;
    if (!got) {
        log_info("waiting for migration lock key=%lld", (long long)STORE_PG_MIGRATE_LOCK_KEY);
        if (lock_call(conn, "pg_advisory_lock", NULL, errbuf, errlen) != 0)
            goto out;
    }
    locked = true;
    if (exec_ok(conn,
                "CREATE TABLE IF NOT EXISTS public.schema_migrations (version int PRIMARY KEY,"
                " name text, applied_at timestamptz DEFAULT pg_catalog.now())",
                "create schema_migrations", errbuf, errlen) != 0)
        goto out;
    res = PQexec(conn, "SELECT version FROM public.schema_migrations ORDER BY version");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 1) {
        classify(conn, res, "read schema_migrations", errbuf, errlen);
        goto out;
    }
    for (int i = 0; i < count; i++) {
        bool done = false;
        int64_t t0;

        for (int r = 0; r < PQntuples(res) && !done; r++)
            done = int_value(res, r) == migs[i].version;
        if (done)
            continue;
        t0 = now_us();
        if (apply_one(conn, &migs[i], errbuf, errlen) != 0)
            goto out;
        (*applied)++;
        log_info("migration applied version=%d name=\"%s\" duration_ms=%lld", migs[i].version,
                 migs[i].name, (long long)((now_us() - t0) / 1000));
    }
    for (int r = 0; r < PQntuples(res); r++) {
        int v = int_value(res, r);

        if (v > max_embedded)
            log_warn("database has a migration this binary does not know version=%d", v);
        if (v > *version)
            *version = v;
    }
    if (max_embedded > *version)
        *version = max_embedded;
    rc = 0;
out:
    PQclear(res);
    if (locked) {
        char ignored[STORE_ERR_MAX];

        /* Closing the session releases the lock anyway; unlock explicitly to be tidy. */
        if (lock_call(conn, "pg_advisory_unlock", NULL, ignored, sizeof(ignored)) != 0)
            log_debug("advisory unlock failed error=\"%s\"", ignored);
    }
    PQfinish(conn);
    pgparams_fini(&params);
    return rc;
}

int store_pg_libpq_version(void)
{
    return PQlibVersion();
}
