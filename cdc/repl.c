/*
 * Replication connection over libpq, shaped after PostgreSQL's
 * pg_recvlogical.c and streamutil.c. In walsender mode only the simple query
 * protocol works, so values are quoted with PQescapeLiteral/Identifier.
 */
#include "repl_int.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "lsn.h"
#include "pgconn.h"
#include "relay_ops.h"

static int64_t mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Waits until the socket is readable, stop_fd fires, or timeout_ms passes
 * (-1: no timeout). Returns 1 readable, 0 timeout, -1 stop requested. */
static int wait_readable(PGconn *conn, int stop_fd, int timeout_ms)
{
    struct pollfd pfd[2] = {{.fd = PQsocket(conn), .events = POLLIN},
                            {.fd = stop_fd, .events = POLLIN}};
    int n = poll(pfd, stop_fd >= 0 ? 2 : 1, timeout_ms);

    if (n > 0 && stop_fd >= 0 && pfd[1].revents != 0)
        return -1;
    return n > 0 ? 1 : (n == 0 ? 0 : (errno == EINTR ? 0 : 1));
}

/*
 * PQexec that a signal can interrupt: slot creation waits for every running
 * transaction to end (docs/protocol.md#p15), and an operator's SIGTERM must not
 * wait with it. Returns the last result (caller clears), or NULL when
 * stopped (the query is cancelled) or the connection failed.
 */
PGresult *repl_exec_interruptible(struct repl_conn *rc, const char *sql, bool *stopped)
{
    PGresult *res, *last = NULL;

    *stopped = false;
    if (!PQsendQuery(rc->conn, sql))
        return NULL;
    for (;;) {
        while (!PQisBusy(rc->conn)) {
            res = PQgetResult(rc->conn);
            if (res == NULL)
                return last;
            PQclear(last);
            last = res;
            /* COPY BOTH answers START_REPLICATION: the stream begins here. */
            if (PQresultStatus(res) == PGRES_COPY_BOTH)
                return last;
        }
        int w = wait_readable(rc->conn, rc->opts->stop_fd, 1000);
        if (w < 0) {
            PGcancel *cancel = PQgetCancel(rc->conn);

            if (cancel != NULL) {
                char buf[256];

                (void)PQcancel(cancel, buf, sizeof(buf));
                PQfreeCancel(cancel);
            }
            PQclear(last);
            *stopped = true;
            return NULL;
        }
        if (w > 0 && PQconsumeInput(rc->conn) == 0) {
            PQclear(last);
            return NULL;
        }
    }
}

/*
 * Classifies a failed command by the protocol and the SQLSTATE only (the
 * server translates its messages): connection loss and transient server
 * states are retried, an active slot is REPL_EBUSY, everything else needs a
 * person. A walsender told to stop for a shutdown refuses new commands and
 * then exits, so that case arrives as a lost connection.
 */
enum repl_status repl_classify(struct repl_conn *rc, const PGresult *res)
{
    switch (pgconn_result_kind(rc->conn, res)) {
    case PGERR_CONNECTION:
    case PGERR_TRANSIENT:
    case PGERR_SESSION:
        return REPL_ERETRY;
    case PGERR_IN_USE:
        return REPL_EBUSY;
    case PGERR_PERMANENT:
    case PGERR_LOGIN:
    case PGERR_SCHEMA:
        break;
    }
    return REPL_EFATAL;
}

/* Runs sql expecting want. On failure fills err and, when state is not
 * NULL, copies the SQLSTATE there ("" when none). */
enum repl_status repl_run_query(struct repl_conn *rc, const char *sql, ExecStatusType want,
                                PGresult **out, char state[PGERR_SQLSTATE_LEN + 1], char *err,
                                size_t errlen)
{
    bool stopped;
    PGresult *res = repl_exec_interruptible(rc, sql, &stopped);

    if (state != NULL)
        state[0] = '\0';
    if (stopped) {
        pgconn_set_err(err, errlen, "stopped while waiting for: %.200s", sql);
        return REPL_ESTOP;
    }
    if (PQresultStatus(res) != want) {
        enum repl_status st = repl_classify(rc, res);

        if (state != NULL)
            snprintf(state, PGERR_SQLSTATE_LEN + 1, "%s", pgconn_sqlstate(res));
        pgconn_set_err(err, errlen, "%s (sqlstate %s) running: %.200s", PQerrorMessage(rc->conn),
                       pgconn_sqlstate(res), sql);
        PQclear(res);
        return st;
    }
    *out = res;
    return REPL_OK;
}

enum repl_status repl_queryf(struct repl_conn *rc, ExecStatusType want, PGresult **out,
                             char state[PGERR_SQLSTATE_LEN + 1], char *err, size_t errlen,
                             const char *fmt, ...)
{
    char sql[4096];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(sql, sizeof(sql), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(sql)) {
        pgconn_set_err(err, errlen, "query too long: %.200s", sql);
        return REPL_EFATAL;
    }
    return repl_run_query(rc, sql, want, out, state, err, errlen);
}

bool repl_quote(struct repl_conn *rc, const char *s, bool literal, char *buf, size_t len, char *err,
                size_t errlen)
{
    char *q = literal ? PQescapeLiteral(rc->conn, s, strlen(s))
                      : PQescapeIdentifier(rc->conn, s, strlen(s));
    bool fits = q != NULL && strlen(q) < len;

    if (fits)
        memcpy(buf, q, strlen(q) + 1);
    else if (q != NULL)
        pgconn_set_err(err, errlen, "cannot quote \"%.64s\": too long", s);
    else
        pgconn_set_err(err, errlen, "cannot quote \"%.64s\": %s", s, PQerrorMessage(rc->conn));
    PQfreemem(q);
    return fits;
}

/* Maps a connection outcome; err gets the "cannot connect" prefix. */
static enum repl_status from_pgconn(enum pgconn_status st, char *err, size_t errlen)
{
    char why[768];

    if (st == PGCONN_ESTOP)
        return REPL_ESTOP;
    snprintf(why, sizeof(why), "%s", err);
    pgconn_set_err(err, errlen, "cannot connect to Postgres: %s", why);
    return st == PGCONN_EFATAL ? REPL_EFATAL : REPL_ERETRY;
}

enum repl_status repl_open(const struct repl_opts *opts, struct repl_conn **out,
                           struct repl_slot_info *info, char *err, size_t errlen)
{
    struct pgconn_opts co = {
        .dburl = opts->dburl,
        .application_name = opts->application_name ? opts->application_name : "cdc-relay",
        .replication = true,
        .connect_timeout_s = opts->connect_timeout_s,
        .stop_fd = opts->stop_fd,
    };
    struct repl_conn *rc;
    enum pgconn_status pst;
    enum repl_status st;

    memset(info, 0, sizeof(*info));
    *out = NULL;
    rc = calloc(1, sizeof(*rc));
    if (rc == NULL) {
        pgconn_set_err(err, errlen, "out of memory");
        return REPL_EFATAL;
    }
    rc->opts = opts;
    rc->conn = pgconn_open(&co, &pst, err, errlen);
    if (rc->conn == NULL) {
        free(rc);
        return from_pgconn(pst, err, errlen);
    }
    st = repl_check_server(rc, info, err, errlen);
    if (st != REPL_OK) {
        repl_abort(rc);
        return st;
    }
    *out = rc;
    return REPL_OK;
}

enum repl_status repl_start(struct repl_conn *rc, uint64_t start_lsn, char *err, size_t errlen)
{
    char slot_id[REPL_QUOTED_MAX], pub_id[REPL_QUOTED_MAX], pub_lit[2 * REPL_QUOTED_MAX];
    char sql[1024];
    PGresult *res;
    bool stopped;

    if (!repl_quote(rc, rc->opts->slot, false, slot_id, sizeof(slot_id), err, errlen) ||
        !repl_quote(rc, rc->opts->publication, false, pub_id, sizeof(pub_id), err, errlen) ||
        !repl_quote(rc, pub_id, true, pub_lit, sizeof(pub_lit), err, errlen))
        return REPL_EFATAL;
    /* publication_names is split like an identifier list, so the quoted
     * identifier goes inside the literal (docs/protocol.md#pgoutput-options).
     * Messages are on in every mode: a re-emit request is one (cdc/reemit.h). */
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL " LSN_FMT " (proto_version '%d', "
             "publication_names %s, messages 'true')",
             slot_id, LSN_ARGS(start_lsn), rc->opts->proto_version, pub_lit);
    res = repl_exec_interruptible(rc, sql, &stopped);
    if (stopped) {
        pgconn_set_err(err, errlen, "stopped while starting replication");
        return REPL_ESTOP;
    }
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        /* 55006 object in use: the slot is active for another PID. */
        enum repl_status st = repl_classify(rc, res);

        pgconn_set_err(err, errlen, "START_REPLICATION failed: %s", PQerrorMessage(rc->conn));
        PQclear(res);
        return st;
    }
    PQclear(res);
    rc->streaming = true;
    return REPL_OK;
}

int repl_recv(struct repl_conn *rc, struct replmsg *msg, char *err, size_t errlen)
{
    int n;

    if (rc->copybuf != NULL) {
        PQfreemem(rc->copybuf);
        rc->copybuf = NULL;
    }
    n = PQgetCopyData(rc->conn, &rc->copybuf, 1);
    if (n > 0) {
        const uint8_t *buf = (const uint8_t *)rc->copybuf;
        enum replmsg_status st = replmsg_parse(buf, (size_t)n, msg);

        if (st == REPLMSG_OK)
            return 1;
        replmsg_describe(st, buf, (size_t)n, err, errlen);
        return REPL_EFATAL;
    }
    if (n == 0)
        return 0;
    if (n == -1) {
        /* End of copy: the server's reason comes as the next result. */
        PGresult *res = PQgetResult(rc->conn);
        enum repl_status st = REPL_ERETRY;

        rc->streaming = false;
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            pgconn_set_err(err, errlen, "server ended the replication stream");
        } else {
            pgconn_set_err(err, errlen, "replication stream ended: %s", PQerrorMessage(rc->conn));
            /* Errors raised by pgoutput itself (missing publication, slot
             * dropped) are not cured by reconnecting; admin shutdowns and
             * terminated walsenders are (57P01 admin_shutdown, 57P02/57P03). */
            st = repl_classify(rc, res) == REPL_EFATAL ? REPL_EFATAL : REPL_ERETRY;
        }
        PQclear(res);
        return st;
    }
    pgconn_set_err(err, errlen, "replication connection failed: %s", PQerrorMessage(rc->conn));
    rc->streaming = false;
    return REPL_ERETRY;
}

enum repl_status repl_consume(struct repl_conn *rc, char *err, size_t errlen)
{
    if (PQconsumeInput(rc->conn) == 0) {
        pgconn_set_err(err, errlen, "replication connection failed: %s", PQerrorMessage(rc->conn));
        return REPL_ERETRY;
    }
    return REPL_OK;
}

int repl_socket(const struct repl_conn *rc)
{
    return PQsocket(rc->conn);
}

enum repl_status repl_send_status(struct repl_conn *rc, uint64_t write_lsn, uint64_t flush_lsn,
                                  uint64_t apply_lsn, int64_t now_pg_us, bool reply_requested,
                                  char *err, size_t errlen)
{
    uint8_t msg[REPLMSG_STATUS_LEN];

    replmsg_status(msg, write_lsn, flush_lsn, apply_lsn, now_pg_us, reply_requested);
    if (PQputCopyData(rc->conn, (const char *)msg, (int)sizeof(msg)) <= 0 ||
        PQflush(rc->conn) != 0) {
        pgconn_set_err(err, errlen, "cannot send status update: %s", PQerrorMessage(rc->conn));
        return REPL_ERETRY;
    }
    return REPL_OK;
}

void repl_close(struct repl_conn *rc, int timeout_ms)
{
    int64_t deadline;

    if (rc == NULL)
        return;
    deadline = mono_ms() + timeout_ms;
    /* prepareToTerminate: CopyDone, then drain until CommandComplete so the
     * walsender ends cleanly instead of logging an unexpected EOF. Bounded:
     * a server that does not answer must not hold up the exit. */
    if (rc->streaming && PQstatus(rc->conn) == CONNECTION_OK && PQputCopyEnd(rc->conn, NULL) > 0 &&
        PQflush(rc->conn) == 0) {
        for (;;) {
            char *buf = NULL;
            int n = PQgetCopyData(rc->conn, &buf, 1);
            int64_t left = deadline - mono_ms();

            if (n > 0) {
                PQfreemem(buf);
                continue;
            }
            if (n < 0)
                break;
            if (left <= 0 || wait_readable(rc->conn, -1, (int)left) <= 0 ||
                PQconsumeInput(rc->conn) == 0)
                goto done;
        }
        for (;;) {
            PGresult *res;
            int64_t left = deadline - mono_ms();

            if (PQisBusy(rc->conn)) {
                if (left <= 0 || wait_readable(rc->conn, -1, (int)left) <= 0 ||
                    PQconsumeInput(rc->conn) == 0)
                    break;
                continue;
            }
            res = PQgetResult(rc->conn);
            if (res == NULL)
                break;
            PQclear(res);
        }
    }
done:
    repl_abort(rc);
}

enum repl_status repl_drop_slot(struct repl_conn *rc, char *err, size_t errlen)
{
    char slot_id[REPL_QUOTED_MAX];
    PGresult *res = NULL;
    enum repl_status st;

    if (!repl_quote(rc, rc->opts->slot, false, slot_id, sizeof(slot_id), err, errlen))
        return REPL_EFATAL;
    st = repl_queryf(rc, PGRES_COMMAND_OK, &res, NULL, err, errlen, "DROP_REPLICATION_SLOT %s",
                     slot_id);
    if (st == REPL_OK)
        PQclear(res);
    return st;
}

void repl_abort(struct repl_conn *rc)
{
    if (rc == NULL)
        return;
    if (rc->copybuf != NULL)
        PQfreemem(rc->copybuf);
    PQfinish(rc->conn);
    free(rc);
}

int repl_libpq_version(void)
{
    return PQlibVersion();
}

/* ---- the stream loop's source (cdc/relay_ops.h) --------------------------- */

static int source_recv(void *rc, struct replmsg *msg, char *err, size_t errlen)
{
    return repl_recv(rc, msg, err, errlen);
}

static enum repl_status source_consume(void *rc, char *err, size_t errlen)
{
    return repl_consume(rc, err, errlen);
}

static int source_socket(const void *rc)
{
    return repl_socket(rc);
}

static enum repl_status source_send_status(void *rc, uint64_t write_lsn, uint64_t flush_lsn,
                                           uint64_t apply_lsn, int64_t now_pg_us,
                                           bool reply_requested, char *err, size_t errlen)
{
    return repl_send_status(rc, write_lsn, flush_lsn, apply_lsn, now_pg_us, reply_requested, err,
                            errlen);
}

const struct relay_source_ops repl_source_ops = {source_recv, source_consume, source_socket,
                                                 source_send_status};
