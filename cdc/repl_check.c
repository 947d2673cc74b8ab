/*
 * What repl_open checks before streaming (docs/protocol.md#r10): the server
 * (IDENTIFY_SYSTEM, wal_level), the publication (created when missing and
 * allowed, or checked to publish the table's inserts) and the slot (created
 * after the publication, or checked: pgoutput, this database, not lost, not
 * active elsewhere; one held by this process's own earlier walsender is
 * asked to let go). Every message says what to fix.
 */
#include "repl_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lsn.h"
#include "pgconn.h"

static enum repl_status check_wal_level(struct repl_conn *rc, char *err, size_t errlen)
{
    PGresult *res = NULL;
    enum repl_status st =
        repl_run_query(rc, "SHOW wal_level", PGRES_TUPLES_OK, &res, NULL, err, errlen);

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
    PGresult *res = NULL;
    enum repl_status st;

    memset(out, 0, sizeof(*out));
    st = repl_queryf(rc, PGRES_TUPLES_OK, &res, NULL, err, errlen,
                     "SELECT a.pid, coalesce(a.backend_start::text, ''), "
                     "coalesce(a.application_name, ''), CASE WHEN a.client_addr IS NULL THEN "
                     "'local socket' ELSE pg_catalog.host(a.client_addr) || ':' || "
                     "a.client_port::text END FROM pg_catalog.pg_stat_activity a WHERE a.pid = %s",
                     pid_sql);
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
        repl_run_query(rc, "IDENTIFY_SYSTEM", PGRES_TUPLES_OK, &res, NULL, err, errlen);

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
    char pub[REPL_QUOTED_MAX], sch[REPL_QUOTED_MAX], tab[REPL_QUOTED_MAX], slot[REPL_QUOTED_MAX];
    char pub_id[REPL_QUOTED_MAX], sch_id[REPL_QUOTED_MAX], tab_id[REPL_QUOTED_MAX];
    PGresult *res = NULL;
    enum repl_status st = REPL_EFATAL;
    bool table_exists;

    if (!repl_quote(rc, o->publication, true, pub, sizeof(pub), err, errlen) ||
        !repl_quote(rc, o->table_schema, true, sch, sizeof(sch), err, errlen) ||
        !repl_quote(rc, o->table_name, true, tab, sizeof(tab), err, errlen) ||
        !repl_quote(rc, o->slot, true, slot, sizeof(slot), err, errlen) ||
        !repl_quote(rc, o->publication, false, pub_id, sizeof(pub_id), err, errlen) ||
        !repl_quote(rc, o->table_schema, false, sch_id, sizeof(sch_id), err, errlen) ||
        !repl_quote(rc, o->table_name, false, tab_id, sizeof(tab_id), err, errlen))
        return REPL_EFATAL;
    st = repl_queryf(
        rc, PGRES_TUPLES_OK, &res, NULL, err, errlen,
        "SELECT c.oid IS NOT NULL, p.oid IS NOT NULL, coalesce(p.pubinsert, false), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_publication_tables t WHERE t.pubname = %s "
        "AND t.schemaname = %s AND t.tablename = %s), "
        "EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = %s) "
        "FROM (SELECT 1) one "
        "LEFT JOIN pg_catalog.pg_class c ON c.oid = "
        "pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s, %s)) "
        "LEFT JOIN pg_catalog.pg_publication p ON p.pubname = %s",
        pub, sch, tab, slot, sch, tab, pub);
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
            st = repl_queryf(rc, PGRES_COMMAND_OK, &cres, state, err, errlen,
                             "CREATE PUBLICATION %s FOR TABLE %s.%s WITH (publish = 'insert')",
                             pub_id, sch_id, tab_id);
        else
            st = repl_queryf(rc, PGRES_COMMAND_OK, &cres, state, err, errlen,
                             "CREATE PUBLICATION %s", pub_id);
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
    return st;
}

static enum repl_status create_slot(struct repl_conn *rc, struct repl_slot_info *info, char *err,
                                    size_t errlen)
{
    char slot_id[REPL_QUOTED_MAX];
    char sql[512];
    PGresult *res;
    bool stopped;

    if (!repl_quote(rc, rc->opts->slot, false, slot_id, sizeof(slot_id), err, errlen))
        return REPL_EFATAL;
    snprintf(sql, sizeof(sql), "CREATE_REPLICATION_SLOT %s LOGICAL pgoutput (SNAPSHOT 'nothing')",
             slot_id);
    res = repl_exec_interruptible(rc, sql, &stopped);
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
            st = repl_classify(rc, res);
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
        PGresult *res = NULL;

        st = repl_queryf(rc, PGRES_TUPLES_OK, &res, NULL, err, errlen,
                         "SELECT pg_catalog.pg_terminate_backend(%d)", h->pid);
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
    char slot[REPL_QUOTED_MAX];
    PGresult *res = NULL;
    enum repl_status st;
    const char *plugin, *database, *wal_status;

    if (!repl_quote(rc, o->slot, true, slot, sizeof(slot), err, errlen))
        return REPL_EFATAL;
    st = repl_queryf(rc, PGRES_TUPLES_OK, &res, NULL, err, errlen,
                     "SELECT slot_type, coalesce(plugin, ''), coalesce(database, ''), active, "
                     "coalesce(active_pid::text, ''), coalesce(wal_status, ''), "
                     "coalesce(confirmed_flush_lsn::text, '0/0') "
                     "FROM pg_catalog.pg_replication_slots WHERE slot_name = %s",
                     slot);
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

enum repl_status repl_check_server(struct repl_conn *rc, struct repl_slot_info *info, char *err,
                                   size_t errlen)
{
    enum repl_status st = identify(rc, info, err, errlen);

    if (st == REPL_OK)
        st = check_wal_level(rc, err, errlen);
    if (st == REPL_OK)
        st = ensure_publication(rc, info, err, errlen);
    if (st == REPL_OK)
        st = ensure_slot(rc, info, err, errlen);
    return st;
}
