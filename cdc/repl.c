/*
 * Replication connection over libpq, shaped after PostgreSQL's
 * pg_recvlogical.c and streamutil.c. In walsender mode only the simple query
 * protocol works, so values are quoted with PQescapeLiteral/Identifier.
 */
#include "repl.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>

#include "be.h"
#include "lsn.h"
#include "pgconn.h"

struct repl_conn {
    PGconn *conn;
    char *copybuf; /* last PQgetCopyData buffer, freed on the next receive */
    const struct repl_opts *opts;
    bool streaming;
};

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
static PGresult *exec_interruptible(struct repl_conn *rc, const char *sql, bool *stopped)
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
static enum repl_status classify(struct repl_conn *rc, const PGresult *res)
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
static enum repl_status run_query(struct repl_conn *rc, const char *sql, ExecStatusType want,
                                  PGresult **out, char state[PGERR_SQLSTATE_LEN + 1], char *err,
                                  size_t errlen)
{
    bool stopped;
    PGresult *res = exec_interruptible(rc, sql, &stopped);

    if (state != NULL)
        state[0] = '\0';
    if (stopped) {
        pgconn_set_err(err, errlen, "stopped while waiting for: %.200s", sql);
        return REPL_ESTOP;
    }
    if (PQresultStatus(res) != want) {
        enum repl_status st = classify(rc, res);

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

static char *literal(struct repl_conn *rc, const char *s)
{
    return PQescapeLiteral(rc->conn, s, strlen(s));
}

static char *ident(struct repl_conn *rc, const char *s)
{
    return PQescapeIdentifier(rc->conn, s, strlen(s));
}

static enum repl_status check_wal_level(struct repl_conn *rc, char *err, size_t errlen)
{
    PGresult *res = NULL;
    enum repl_status st = run_query(rc, "SHOW wal_level", PGRES_TUPLES_OK, &res, NULL, err, errlen);

    if (st != REPL_OK)
        return st;
    if (PQntuples(res) != 1 || strcmp(PQgetvalue(res, 0, 0), "logical") != 0) {
        pgconn_set_err(
            err, errlen,
            "wal_level is '%s', logical decoding needs 'logical': set wal_level = logical in "
            "postgresql.conf and restart the server",
            PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : "?");
        PQclear(res);
        return REPL_EFATAL;
    }
    PQclear(res);
    return REPL_OK;
}

/*
 * Reads the pg_stat_activity row of the backend whose pid is the SQL
 * expression pid_sql into *out (pid 0 when there is none). Other roles'
 * rows show no backend_start without pg_read_all_stats: such a walsender is
 * never taken for one of ours.
 */
static enum repl_status read_walsender(struct repl_conn *rc, const char *pid_sql,
                                       struct repl_walsender *out, char *err, size_t errlen)
{
    char sql[640];
    PGresult *res = NULL;
    enum repl_status st;

    memset(out, 0, sizeof(*out));
    snprintf(sql, sizeof(sql),
             "SELECT a.pid, coalesce(a.backend_start::text, ''), "
             "coalesce(a.application_name, ''), CASE WHEN a.client_addr IS NULL THEN "
             "'local socket' ELSE pg_catalog.host(a.client_addr) || ':' || "
             "a.client_port::text END FROM pg_catalog.pg_stat_activity a WHERE a.pid = %s",
             pid_sql);
    st = run_query(rc, sql, PGRES_TUPLES_OK, &res, NULL, err, errlen);
    if (st != REPL_OK)
        return st;
    if (PQntuples(res) == 1 && PQnfields(res) == 4) {
        out->pid = atoi(PQgetvalue(res, 0, 0));
        snprintf(out->backend_start, sizeof(out->backend_start), "%s", PQgetvalue(res, 0, 1));
        snprintf(out->application_name, sizeof(out->application_name), "%s", PQgetvalue(res, 0, 2));
        snprintf(out->client, sizeof(out->client), "%s", PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return REPL_OK;
}

static enum repl_status identify(struct repl_conn *rc, struct repl_slot_info *info, char *err,
                                 size_t errlen)
{
    PGresult *res = NULL;
    enum repl_status st =
        run_query(rc, "IDENTIFY_SYSTEM", PGRES_TUPLES_OK, &res, NULL, err, errlen);

    if (st != REPL_OK)
        return st;
    if (PQntuples(res) != 1 || PQnfields(res) < 4) {
        pgconn_set_err(err, errlen,
                       "IDENTIFY_SYSTEM returned %d rows and %d fields, expected 1 and 4",
                       PQntuples(res), PQnfields(res));
        PQclear(res);
        return REPL_EFATAL;
    }
    snprintf(info->systemid, sizeof(info->systemid), "%s", PQgetvalue(res, 0, 0));
    if (!lsn_parse(PQgetvalue(res, 0, 2), &info->server_wal_end))
        info->server_wal_end = 0;
    if (PQgetisnull(res, 0, 3)) {
        pgconn_set_err(err, errlen, "connection is not a database replication connection");
        PQclear(res);
        return REPL_EFATAL;
    }
    snprintf(info->dbname, sizeof(info->dbname), "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    return read_walsender(rc, "pg_catalog.pg_backend_pid()", &info->self, err, errlen);
}

static enum repl_status ensure_publication(struct repl_conn *rc, struct repl_slot_info *info,
                                           char *err, size_t errlen)
{
    const struct repl_opts *o = rc->opts;
    char *pub = literal(rc, o->publication), *sch = literal(rc, o->table_schema),
         *tab = literal(rc, o->table_name), *slot = literal(rc, o->slot);
    char *pub_id = ident(rc, o->publication), *sch_id = ident(rc, o->table_schema),
         *tab_id = ident(rc, o->table_name);
    char sql[2048];
    PGresult *res = NULL;
    enum repl_status st = REPL_EFATAL;
    bool table_exists;

    if (!pub || !sch || !tab || !slot || !pub_id || !sch_id || !tab_id) {
        pgconn_set_err(err, errlen, "cannot quote names: %s", PQerrorMessage(rc->conn));
        goto out;
    }
    snprintf(sql, sizeof(sql),
             "SELECT c.oid IS NOT NULL, p.oid IS NOT NULL, coalesce(p.pubinsert, false), "
             "EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables t WHERE t.pubname = %s "
             "AND t.schemaname = %s AND t.tablename = %s), "
             "EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = %s) "
             "FROM (SELECT 1) one "
             "LEFT JOIN pg_catalog.pg_class c ON c.oid = "
             "pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s, %s)) "
             "LEFT JOIN pg_catalog.pg_publication p ON p.pubname = %s",
             pub, sch, tab, slot, sch, tab, pub);
    st = run_query(rc, sql, PGRES_TUPLES_OK, &res, NULL, err, errlen);
    if (st != REPL_OK)
        goto out;
    st = REPL_EFATAL;
    table_exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    /* Message mode needs no table: its events are not rows. */
    if (!table_exists && !o->messages) {
        pgconn_set_err(
            err, errlen,
            "table %s.%s does not exist in database \"%s\": run `orders-api --migrate` or "
            "set --table",
            o->table_schema, o->table_name, info->dbname);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 1), "t") != 0) {
        PGresult *cres = NULL;
        char state[PGERR_SQLSTATE_LEN + 1];

        if (!o->create_publication) {
            pgconn_set_err(
                err, errlen,
                "publication \"%s\" does not exist; create it with CREATE PUBLICATION %s FOR "
                "TABLE %s.%s WITH (publish = 'insert') or drop --no-create-publication",
                o->publication, pub_id, sch_id, tab_id);
            goto out;
        }
        /* pgoutput reads the publication as of each decoded change: one made
         * now would not cover the WAL the slot has yet to send, which
         * PostgreSQL 18 then skips without an error (docs/protocol.md#p9). */
        if (!o->messages && strcmp(PQgetvalue(res, 0, 4), "t") == 0) {
            pgconn_set_err(err, errlen,
                           "publication \"%s\" does not exist but replication slot \"%s\" does: "
                           "it was dropped after the slot was made, and a publication created now "
                           "would not cover the transactions the slot has yet to send; recover as "
                           "in docs/operations.md#publication-dropped",
                           o->publication, o->slot);
            goto out;
        }
        if (table_exists)
            snprintf(sql, sizeof(sql),
                     "CREATE PUBLICATION %s FOR TABLE %s.%s WITH (publish = 'insert')", pub_id,
                     sch_id, tab_id);
        else
            snprintf(sql, sizeof(sql), "CREATE PUBLICATION %s", pub_id);
        st = run_query(rc, sql, PGRES_COMMAND_OK, &cres, state, err, errlen);
        if (st != REPL_OK) {
            /* 42710 duplicate_object, 23505 unique_violation: a concurrent
             * relay created it first; check again. */
            if (strcmp(state, "42710") == 0 || strcmp(state, "23505") == 0) {
                st = REPL_ERETRY;
                goto out;
            }
            if (st == REPL_EFATAL) {
                char why[512];
                snprintf(why, sizeof(why), "%s", err);
                pgconn_set_err(
                    err, errlen,
                    "cannot create publication \"%s\": %s (the relay's role must own table "
                    "%s.%s, or create the publication as its owner)",
                    o->publication, why, o->table_schema, o->table_name);
            }
            goto out;
        }
        info->publication_created = true;
        PQclear(cres);
        st = REPL_OK;
        goto out;
    }
    if (o->messages) {
        st = REPL_OK; /* any publication will do: messages are not filtered by it */
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 2), "t") != 0) {
        pgconn_set_err(
            err, errlen,
            "publication \"%s\" does not publish inserts: ALTER PUBLICATION %s SET (publish = "
            "'insert')",
            o->publication, pub_id);
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 3), "t") != 0) {
        pgconn_set_err(
            err, errlen,
            "publication \"%s\" does not include table %s.%s: ALTER PUBLICATION %s ADD TABLE "
            "%s.%s",
            o->publication, o->table_schema, o->table_name, pub_id, sch_id, tab_id);
        goto out;
    }
    st = REPL_OK;
out:
    PQclear(res);
    PQfreemem(pub);
    PQfreemem(sch);
    PQfreemem(tab);
    PQfreemem(slot);
    PQfreemem(pub_id);
    PQfreemem(sch_id);
    PQfreemem(tab_id);
    return st;
}

static enum repl_status create_slot(struct repl_conn *rc, struct repl_slot_info *info, char *err,
                                    size_t errlen)
{
    char *slot_id = ident(rc, rc->opts->slot);
    char sql[512];
    PGresult *res;
    bool stopped;

    if (slot_id == NULL) {
        pgconn_set_err(err, errlen, "cannot quote slot name: %s", PQerrorMessage(rc->conn));
        return REPL_EFATAL;
    }
    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'nothing')",
             slot_id);
    PQfreemem(slot_id);
    res = exec_interruptible(rc, sql, &stopped);
    if (stopped) {
        pgconn_set_err(err, errlen, "stopped while creating replication slot \"%s\"",
                       rc->opts->slot);
        return REPL_ESTOP;
    }
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enum repl_status st;

        if (strcmp(pgconn_sqlstate(res), "42710") == 0) {
            pgconn_set_err(err, errlen, "slot \"%s\" was created concurrently by another session",
                           rc->opts->slot);
            st = REPL_EBUSY;
        } else {
            pgconn_set_err(err, errlen, "cannot create replication slot \"%s\": %s", rc->opts->slot,
                           PQerrorMessage(rc->conn));
            st = classify(rc, res);
        }
        PQclear(res);
        return st;
    }
    if (PQntuples(res) != 1 || PQnfields(res) < 2 ||
        !lsn_parse(PQgetvalue(res, 0, 1), &info->confirmed_flush)) {
        pgconn_set_err(err, errlen, "unexpected CREATE_REPLICATION_SLOT result");
        PQclear(res);
        return REPL_EFATAL;
    }
    info->created = true;
    PQclear(res);
    return REPL_OK;
}

static bool walsender_same(const struct repl_walsender *a, const struct repl_walsender *b)
{
    return a->pid != 0 && a->pid == b->pid && a->backend_start[0] != '\0' &&
           strcmp(a->backend_start, b->backend_start) == 0 &&
           strcmp(a->application_name, b->application_name) == 0;
}

/*
 * The slot is active for backend pid. If that is a walsender this process
 * opened before (same pid, start time and application_name: a connection it
 * gave up on, e.g. after --server-timeout, whose walsender has not noticed),
 * it is ended so the slot can be taken back; the role may always end its
 * own sessions. Anything else is another relay's, or a walsender of a relay
 * process that is gone, and is left alone. Returns REPL_EBUSY (err says
 * which) or another status when the questions fail.
 */
static enum repl_status slot_busy(struct repl_conn *rc, struct repl_slot_info *info,
                                  const char *pid, char *err, size_t errlen)
{
    const struct repl_opts *o = rc->opts;
    struct repl_walsender *h = &info->holder;
    enum repl_status st = read_walsender(rc, pid, h, err, errlen);

    if (st != REPL_OK)
        return st;
    for (size_t i = 0; i < o->nown && !info->holder_own; i++)
        info->holder_own = walsender_same(h, &o->own[i]);
    if (info->holder_own) {
        char sql[96];
        PGresult *res = NULL;

        snprintf(sql, sizeof(sql), "SELECT pg_catalog.pg_terminate_backend(%d)", h->pid);
        st = run_query(rc, sql, PGRES_TUPLES_OK, &res, NULL, err, errlen);
        if (st == REPL_ESTOP)
            return st;
        if (st != REPL_OK) {
            /* Still ours: it goes at the latest at wal_sender_timeout. */
            char why[512];

            snprintf(why, sizeof(why), "%s", err);
            pgconn_set_err(err, errlen,
                           "replication slot \"%s\" is held by this relay's own earlier "
                           "walsender (PID %d), which could not be ended: %s",
                           o->slot, h->pid, why);
            return REPL_EBUSY;
        }
        PQclear(res);
        pgconn_set_err(err, errlen,
                       "replication slot \"%s\" is held by this relay's own earlier walsender "
                       "(PID %d, application_name %s, started %s), which stopped answering: "
                       "asked it to end (pg_terminate_backend)",
                       o->slot, h->pid, h->application_name, h->backend_start);
        return REPL_EBUSY;
    }
    if (h->pid == 0)
        pgconn_set_err(err, errlen, "replication slot \"%s\" is active for PID %s", o->slot, pid);
    else
        pgconn_set_err(err, errlen,
                       "replication slot \"%s\" is active for PID %s (application_name %s, "
                       "client %s, started %s): another relay, or the walsender of a relay that "
                       "ended without closing its connection, holds it",
                       o->slot, pid, h->application_name[0] ? h->application_name : "(none)",
                       h->client[0] ? h->client : "(not shown to this role)",
                       h->backend_start[0] ? h->backend_start : "(not shown to this role)");
    return REPL_EBUSY;
}

static enum repl_status ensure_slot(struct repl_conn *rc, struct repl_slot_info *info, char *err,
                                    size_t errlen)
{
    const struct repl_opts *o = rc->opts;
    char *slot = literal(rc, o->slot);
    char sql[1024];
    PGresult *res = NULL;
    enum repl_status st;
    const char *plugin, *database, *wal_status;

    if (slot == NULL) {
        pgconn_set_err(err, errlen, "cannot quote slot name: %s", PQerrorMessage(rc->conn));
        return REPL_EFATAL;
    }
    snprintf(sql, sizeof(sql),
             "SELECT slot_type, coalesce(plugin, ''), coalesce(database, ''), active, "
             "coalesce(active_pid::text, ''), coalesce(wal_status, ''), "
             "coalesce(confirmed_flush_lsn::text, '0/0') "
             "FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
             slot);
    PQfreemem(slot);
    st = run_query(rc, sql, PGRES_TUPLES_OK, &res, NULL, err, errlen);
    if (st != REPL_OK)
        return st;
    if (PQntuples(res) == 0) {
        PQclear(res);
        if (!o->create_slot) {
            pgconn_set_err(
                err, errlen,
                "replication slot \"%s\" does not exist (dropped while the relay ran, or "
                "--no-create-slot is set); transactions after the relay's last confirmed "
                "position may be gone from the server: recreate it with SELECT "
                "pg_create_logical_replication_slot('%s', 'pgoutput') and replay the gap from "
                "the outbox table",
                o->slot, o->slot);
            return REPL_EFATAL;
        }
        return create_slot(rc, info, err, errlen);
    }
    plugin = PQgetvalue(res, 0, 1);
    database = PQgetvalue(res, 0, 2);
    wal_status = PQgetvalue(res, 0, 5);
    st = REPL_EFATAL;
    if (strcmp(PQgetvalue(res, 0, 0), "logical") != 0 || strcmp(plugin, "pgoutput") != 0) {
        pgconn_set_err(
            err, errlen,
            "replication slot \"%s\" is a %s slot with plugin '%s'; the relay needs a logical "
            "slot with plugin 'pgoutput' (use another --slot name)",
            o->slot, PQgetvalue(res, 0, 0), plugin);
    } else if (strcmp(database, info->dbname) != 0) {
        pgconn_set_err(
            err, errlen,
            "replication slot \"%s\" belongs to database \"%s\", not \"%s\" (use another "
            "--slot name or connect to \"%s\")",
            o->slot, database, info->dbname, database);
    } else if (strcmp(wal_status, "lost") == 0) {
        pgconn_set_err(
            err, errlen,
            "replication slot \"%s\" is invalidated (wal_status = lost): the WAL it needed "
            "was removed, events after its confirmed position are gone from the slot; drop "
            "and recreate it, then replay the gap from the outbox table",
            o->slot);
    } else if (strcmp(PQgetvalue(res, 0, 3), "t") == 0) {
        char pid[16];

        snprintf(pid, sizeof(pid), "%d", atoi(PQgetvalue(res, 0, 4)));
        PQclear(res);
        return slot_busy(rc, info, pid, err, errlen);
    } else if (!lsn_parse(PQgetvalue(res, 0, 6), &info->confirmed_flush)) {
        pgconn_set_err(err, errlen, "cannot parse confirmed_flush_lsn '%s'", PQgetvalue(res, 0, 6));
    } else {
        st = REPL_OK;
    }
    PQclear(res);
    return st;
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

static PGconn *connect_plain(const struct repl_opts *opts, const char *application_name,
                             enum repl_status *st, char *err, size_t errlen)
{
    struct pgconn_opts co = {
        .dburl = opts->dburl,
        .application_name = application_name,
        .connect_timeout_s = opts->connect_timeout_s,
        .stop_fd = opts->stop_fd,
    };
    enum pgconn_status pst;
    PGconn *conn = pgconn_open(&co, &pst, err, errlen);

    *st = conn != NULL ? REPL_OK : from_pgconn(pst, err, errlen);
    return conn;
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
    st = identify(rc, info, err, errlen);
    if (st == REPL_OK)
        st = check_wal_level(rc, err, errlen);
    if (st == REPL_OK)
        st = ensure_publication(rc, info, err, errlen);
    if (st == REPL_OK)
        st = ensure_slot(rc, info, err, errlen);
    if (st != REPL_OK) {
        repl_abort(rc);
        return st;
    }
    *out = rc;
    return REPL_OK;
}

enum repl_status repl_start(struct repl_conn *rc, uint64_t start_lsn, char *err, size_t errlen)
{
    char *slot_id = ident(rc, rc->opts->slot);
    char *pub_id = ident(rc, rc->opts->publication);
    char *pub_lit = NULL;
    char sql[1024];
    PGresult *res;
    bool stopped;

    if (slot_id == NULL || pub_id == NULL || (pub_lit = literal(rc, pub_id)) == NULL) {
        pgconn_set_err(err, errlen, "cannot quote names: %s", PQerrorMessage(rc->conn));
        PQfreemem(slot_id);
        PQfreemem(pub_id);
        return REPL_EFATAL;
    }
    /* publication_names is split like an identifier list, so the quoted
     * identifier goes inside the literal (docs/protocol.md#pgoutput-options).
     * Messages are on in every mode: a re-emit request is one (cdc/reemit.h). */
    snprintf(sql, sizeof(sql),
             "START_REPLICATION SLOT %s LOGICAL " LSN_FMT " (proto_version '%d', "
             "publication_names %s, messages 'true')",
             slot_id, LSN_ARGS(start_lsn), rc->opts->proto_version, pub_lit);
    PQfreemem(slot_id);
    PQfreemem(pub_id);
    PQfreemem(pub_lit);
    res = exec_interruptible(rc, sql, &stopped);
    if (stopped) {
        pgconn_set_err(err, errlen, "stopped while starting replication");
        return REPL_ESTOP;
    }
    if (PQresultStatus(res) != PGRES_COPY_BOTH) {
        /* 55006 object in use: the slot is active for another PID. */
        enum repl_status st = classify(rc, res);

        pgconn_set_err(err, errlen, "START_REPLICATION failed: %s", PQerrorMessage(rc->conn));
        PQclear(res);
        return st;
    }
    PQclear(res);
    rc->streaming = true;
    return REPL_OK;
}

int repl_recv(struct repl_conn *rc, const uint8_t **buf, char *err, size_t errlen)
{
    int n;

    if (rc->copybuf != NULL) {
        PQfreemem(rc->copybuf);
        rc->copybuf = NULL;
    }
    n = PQgetCopyData(rc->conn, &rc->copybuf, 1);
    if (n > 0) {
        *buf = (const uint8_t *)rc->copybuf;
        return n;
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
            st = classify(rc, res) == REPL_EFATAL ? REPL_EFATAL : REPL_ERETRY;
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
    uint8_t msg[REPL_STATUS_LEN];

    msg[0] = 'r';
    be_put64(msg + 1, write_lsn);
    be_put64(msg + 9, flush_lsn);
    be_put64(msg + 17, apply_lsn);
    be_put64(msg + 25, (uint64_t)now_pg_us);
    msg[33] = reply_requested ? 1 : 0;
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

struct repl_heartbeat {
    PGconn *conn;
    bool in_flight;
};

struct repl_heartbeat *repl_heartbeat_open(const struct repl_opts *opts, char *err, size_t errlen)
{
    struct repl_heartbeat *hb = calloc(1, sizeof(*hb));
    enum repl_status st;

    if (hb == NULL) {
        pgconn_set_err(err, errlen, "out of memory");
        return NULL;
    }
    hb->conn = connect_plain(opts, "cdc-relay-heartbeat", &st, err, errlen);
    if (hb->conn == NULL) {
        char why[768];

        snprintf(why, sizeof(why), "%s", err);
        pgconn_set_err(err, errlen, "heartbeat connection failed: %s", why);
        repl_heartbeat_close(hb);
        return NULL;
    }
    return hb;
}

enum repl_status repl_publication_check(const struct repl_opts *opts, char *err, size_t errlen)
{
    const char *params[] = {opts->publication, opts->table_schema, opts->table_name};
    PGconn *conn;
    PGresult *res = NULL;
    enum repl_status st;

    /* A check that cannot connect is retried at the next interval; the
     * replication connection is the one that reports a bad login. */
    conn = connect_plain(opts, "cdc-relay-check", &st, err, errlen);
    if (conn == NULL) {
        char why[768];

        snprintf(why, sizeof(why), "%s", err);
        pgconn_set_err(err, errlen, "publication check: %s", why);
        return st == REPL_ESTOP ? REPL_ESTOP : REPL_ERETRY;
    }
    st = REPL_ERETRY;
    res = PQexecParams(conn,
                       "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables "
                       "WHERE pubname = $1 AND schemaname = $2 AND tablename = $3)",
                       3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQnfields(res) != 1) {
        pgconn_set_err(err, errlen, "publication check failed: %s", PQerrorMessage(conn));
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        st = REPL_OK;
        goto out;
    }
    st = REPL_EFATAL;
    pgconn_set_err(
        err, errlen,
        "table %s.%s is no longer in publication \"%s\" (altered or dropped while the relay "
        "ran): its inserts since then were not streamed, and are not confirmed; add the table "
        "back, relay the missing rows from the outbox table, then restart",
        opts->table_schema, opts->table_name, opts->publication);
out:
    PQclear(res);
    PQfinish(conn);
    return st;
}

enum repl_status repl_heartbeat_tick(struct repl_heartbeat *hb, char *err, size_t errlen)
{
    if (hb->in_flight) {
        PGresult *res;

        if (PQconsumeInput(hb->conn) == 0) {
            pgconn_set_err(err, errlen, "heartbeat connection failed: %s",
                           PQerrorMessage(hb->conn));
            return REPL_ERETRY;
        }
        if (PQisBusy(hb->conn))
            return REPL_OK; /* the last one is still running: skip this beat */
        while ((res = PQgetResult(hb->conn)) != NULL) {
            if (PQresultStatus(res) != PGRES_TUPLES_OK) {
                pgconn_set_err(err, errlen, "heartbeat failed: %s", PQresultErrorMessage(res));
                PQclear(res);
                return REPL_ERETRY;
            }
            PQclear(res);
        }
        hb->in_flight = false;
    }
    /* Non-transactional: written to WAL at once, decoded when read, no
     * transaction to commit (docs/protocol.md#p1; PG15 has the 3-argument form). */
    if (!PQsendQuery(hb->conn,
                     "SELECT pg_catalog.pg_logical_emit_message(false, 'cdc-relay-heartbeat', "
                     "pg_catalog.now()::text)")) {
        pgconn_set_err(err, errlen, "heartbeat failed: %s", PQerrorMessage(hb->conn));
        return REPL_ERETRY;
    }
    hb->in_flight = true;
    return REPL_OK;
}

void repl_heartbeat_close(struct repl_heartbeat *hb)
{
    if (hb == NULL)
        return;
    PQfinish(hb->conn);
    free(hb);
}

enum repl_status repl_drop_slot(struct repl_conn *rc, char *err, size_t errlen)
{
    char *slot_id = ident(rc, rc->opts->slot);
    char sql[256];
    PGresult *res = NULL;
    enum repl_status st;

    if (slot_id == NULL) {
        pgconn_set_err(err, errlen, "cannot quote slot name: %s", PQerrorMessage(rc->conn));
        return REPL_EFATAL;
    }
    snprintf(sql, sizeof(sql), "DROP_REPLICATION_SLOT %s", slot_id);
    PQfreemem(slot_id);
    st = run_query(rc, sql, PGRES_COMMAND_OK, &res, NULL, err, errlen);
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
