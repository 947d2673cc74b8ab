/*
 * libpq for cdc-relay prune (see prune_pg.h). Each statement is its own
 * transaction except a partition's lock, check, detach and drop, which
 * stand or fall together.
 */
#include "prune_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lsn.h"
#include "pgconn.h"
#include "poll_sql.h"
#include "prune_sql.h"
#include "xmem.h"

/* Runs sql with nparams text parameters; on failure fills err (what: the
 * step) and returns the classified status with *res cleared. */
static enum outbox_pg_status run(PGconn *conn, const char *what, const char *sql, int nparams,
                                 const char *const *params, ExecStatusType want, int ncols,
                                 PGresult **res, char *err, size_t errlen)
{
    enum outbox_pg_status st;

    *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(*res) == want &&
        (want != PGRES_TUPLES_OK || (PQnfields(*res) == ncols && PQntuples(*res) >= 1)))
        return OUTBOX_PG_OK;
    pgconn_set_err(err, errlen, "%s failed: %s", what, PQerrorMessage(conn));
    st = PQresultStatus(*res) == want ? OUTBOX_PG_EFATAL : outbox_pg_classify(conn, *res);
    PQclear(*res);
    *res = NULL;
    return st;
}

enum outbox_pg_status prune_pg_relkind(struct pg_conn *conn, const char *schema, const char *table,
                                       bool *partitioned, char *err, size_t errlen)
{
    const char *params[2] = {schema, table};
    PGresult *res;
    enum outbox_pg_status st =
        run(conn, "reading the table's kind",
            "SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = "
            "c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            2, params, PGRES_TUPLES_OK, 1, &res, err, errlen);

    if (st != OUTBOX_PG_OK)
        return st;
    *partitioned = strcmp(PQgetvalue(res, 0, 0), "p") == 0;
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status prune_pg_horizon(struct pg_conn *conn, uint64_t *lsn, char *h, size_t hlen,
                                       char *err, size_t errlen)
{
    PGresult *res;
    enum outbox_pg_status st =
        run(conn, "reading the WAL position and snapshot horizon",
            "SELECT pg_catalog.pg_current_wal_insert_lsn()::pg_catalog.text, "
            "pg_catalog.pg_snapshot_xmin(pg_catalog.pg_current_snapshot())::pg_catalog.text",
            0, NULL, PGRES_TUPLES_OK, 2, &res, err, errlen);

    if (st != OUTBOX_PG_OK)
        return st;
    if (!lsn_parse(PQgetvalue(res, 0, 0), lsn)) {
        pgconn_set_err(err, errlen, "the server's WAL position \"%s\" does not parse",
                       PQgetvalue(res, 0, 0));
        PQclear(res);
        return OUTBOX_PG_EFATAL;
    }
    snprintf(h, hlen, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status prune_pg_slot(struct pg_conn *conn, const char *slot,
                                    struct prune_pg_slot *out, char *err, size_t errlen)
{
    const char *params[1] = {slot};
    PGresult *res;
    /* wal_status 'lost': invalidated (the WAL it needed is gone). */
    enum outbox_pg_status st =
        run(conn, "reading the replication slot",
            "SELECT pg_catalog.count(*) > 0, pg_catalog.bool_and(s.slot_type = 'logical'), "
            "pg_catalog.bool_and(s.database = pg_catalog.current_database()), "
            "pg_catalog.bool_and(s.wal_status IS DISTINCT FROM 'lost'), "
            "pg_catalog.max(s.confirmed_flush_lsn)::pg_catalog.text "
            "FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1",
            1, params, PGRES_TUPLES_OK, 5, &res, err, errlen);

    memset(out, 0, sizeof(*out));
    if (st != OUTBOX_PG_OK)
        return st;
    out->exists = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    if (out->exists) {
        if (strcmp(PQgetvalue(res, 0, 1), "t") != 0)
            snprintf(out->why, sizeof(out->why), "it is a physical slot");
        else if (strcmp(PQgetvalue(res, 0, 2), "t") != 0)
            snprintf(out->why, sizeof(out->why), "it belongs to another database");
        else if (strcmp(PQgetvalue(res, 0, 3), "t") != 0)
            snprintf(out->why, sizeof(out->why),
                     "it was invalidated (wal_status lost): its position says nothing about "
                     "what was delivered");
        else if (PQgetisnull(res, 0, 4) || !lsn_parse(PQgetvalue(res, 0, 4), &out->confirmed_flush))
            snprintf(out->why, sizeof(out->why), "it has no confirmed position");
        else
            out->usable = true;
    }
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status prune_pg_systemid(struct pg_conn *conn, char *out, size_t outlen, char *err,
                                        size_t errlen)
{
    PGresult *res = PQexec(conn, "SELECT system_identifier::pg_catalog.text FROM "
                                 "pg_catalog.pg_control_system()");

    *out = '\0';
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1) {
        snprintf(out, outlen, "%s", PQgetvalue(res, 0, 0));
    } else if (pgconn_result_kind(conn, res) == PGERR_CONNECTION) {
        pgconn_set_err(err, errlen, "reading the system identifier failed: %s",
                       PQerrorMessage(conn));
        PQclear(res);
        return OUTBOX_PG_ERETRY;
    }
    PQclear(res);
    return OUTBOX_PG_OK;
}

/* The predicate's parameters, then extra ones; returns the count. */
static int bounds_params(const struct prune_pg_bounds *b, char *cutoff, size_t cutofflen,
                         const char **params)
{
    int n = 0;

    snprintf(cutoff, cutofflen, "%lld", (long long)b->cutoff_us);
    params[n++] = cutoff;
    if (b->horizon != NULL)
        params[n++] = b->horizon;
    return n;
}

enum outbox_pg_status prune_pg_batch(struct pg_conn *conn, const char *sql,
                                     const struct prune_pg_bounds *b, char *last, size_t lastlen,
                                     int limit, uint64_t *locked, uint64_t *deleted, char *err,
                                     size_t errlen)
{
    const char *params[4];
    char cutoff[24], lim[16];
    int n = bounds_params(b, cutoff, sizeof(cutoff), params);
    PGresult *res;
    enum outbox_pg_status st;

    snprintf(lim, sizeof(lim), "%d", limit);
    params[n++] = last;
    params[n++] = lim;
    st = run(conn, "deleting a batch", sql, n, params, PGRES_TUPLES_OK, 3, &res, err, errlen);
    if (st != OUTBOX_PG_OK)
        return st;
    *locked = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    *deleted = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    if (!PQgetisnull(res, 0, 2))
        snprintf(last, lastlen, "%s", PQgetvalue(res, 0, 2));
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status prune_pg_count(struct pg_conn *conn, const char *sql,
                                     const struct prune_pg_bounds *b, uint64_t *count, char *err,
                                     size_t errlen)
{
    const char *params[2];
    char cutoff[24];
    int n = bounds_params(b, cutoff, sizeof(cutoff), params);
    PGresult *res;
    enum outbox_pg_status st = run(conn, "counting the rows to prune", sql, n, params,
                                   PGRES_TUPLES_OK, 1, &res, err, errlen);

    if (st != OUTBOX_PG_OK)
        return st;
    *count = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status prune_pg_partitioning(struct pg_conn *conn, const char *schema,
                                            const char *table, const char *column, bool *ok,
                                            char *err, size_t errlen)
{
    const char *params[3] = {schema, table, column};
    PGresult *res;
    enum outbox_pg_status st = run(conn, "reading the partitioning", prune_sql_partitioning(), 3,
                                   params, PGRES_TUPLES_OK, 1, &res, err, errlen);

    if (st != OUTBOX_PG_OK)
        return st;
    *ok = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status prune_pg_partitions(struct pg_conn *conn, const char *sql, const char *schema,
                                          const char *table, int64_t cutoff_us,
                                          struct prune_pg_partition **out, size_t *n, char *err,
                                          size_t errlen)
{
    char cutoff[24];
    const char *params[3] = {schema, table, cutoff};
    PGresult *res;
    int rows;

    *out = NULL;
    *n = 0;
    snprintf(cutoff, sizeof(cutoff), "%lld", (long long)cutoff_us);
    res = PQexecParams(conn, sql, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 5) {
        enum outbox_pg_status st = outbox_pg_classify(conn, res);

        pgconn_set_err(err, errlen, "listing the partitions failed: %s", PQerrorMessage(conn));
        PQclear(res);
        return st;
    }
    rows = PQntuples(res);
    *out = xcalloc(rows > 0 ? (size_t)rows : 1, sizeof(**out));
    for (int i = 0; i < rows; i++) {
        struct prune_pg_partition *p = &(*out)[i];

        snprintf(p->schema, sizeof(p->schema), "%s", PQgetvalue(res, i, 0));
        snprintf(p->name, sizeof(p->name), "%s", PQgetvalue(res, i, 1));
        p->relkind = PQgetvalue(res, i, 2)[0];
        snprintf(p->bound, sizeof(p->bound), "%s", PQgetvalue(res, i, 3));
        p->ends_before_cutoff = strcmp(PQgetvalue(res, i, 4), "t") == 0;
    }
    *n = (size_t)rows;
    PQclear(res);
    return OUTBOX_PG_OK;
}

enum outbox_pg_status
prune_pg_partition_drop(struct pg_conn *conn, const char *root_schema, const char *root_table,
                        const struct prune_pg_partition *p, const char *check_sql,
                        const struct prune_pg_bounds *b, bool keep, bool dry_run,
                        int lock_timeout_ms, uint64_t *rows, enum prune_pg_verdict *verdict,
                        char *err, size_t errlen)
{
    char ps[260], pn[260], rs[260], rn[260], sql[1400], cutoff[24];
    const char *params[2];
    int nparams = bounds_params(b, cutoff, sizeof(cutoff), params);
    enum outbox_pg_status st;
    PGresult *res = NULL;
    uint64_t bad;

    *verdict = PRUNE_PG_KEPT;
    *rows = 0;
    if (!poll_sql_quote_ident(p->schema, ps, sizeof(ps)) ||
        !poll_sql_quote_ident(p->name, pn, sizeof(pn)) ||
        !poll_sql_quote_ident(root_schema, rs, sizeof(rs)) ||
        !poll_sql_quote_ident(root_table, rn, sizeof(rn))) {
        pgconn_set_err(err, errlen, "partition name %s.%s is too long", p->schema, p->name);
        return OUTBOX_PG_EFATAL;
    }
    if (!dry_run) {
        if ((st = outbox_pg_command(conn, "BEGIN", "BEGIN", err, errlen)) != OUTBOX_PG_OK)
            return st;
        /* A lock waited for in the queue would stall every insert behind
         * it: give up soon and leave the partition to the next run. */
        snprintf(sql, sizeof(sql), "SET LOCAL lock_timeout = %d", lock_timeout_ms);
        if ((st = outbox_pg_command(conn, sql, "setting lock_timeout", err, errlen)) !=
            OUTBOX_PG_OK)
            goto rollback;
        /* Locked before it is read: no row can arrive between the check and
         * the drop (a writer still open holds its lock until it ends). */
        snprintf(sql, sizeof(sql), "LOCK TABLE %s.%s IN ACCESS EXCLUSIVE MODE", ps, pn);
        if ((st = outbox_pg_command(conn, sql, "locking the partition", err, errlen)) !=
            OUTBOX_PG_OK)
            goto busy_or_fail;
    }
    st = run(conn, "checking the partition", check_sql, nparams, params, PGRES_TUPLES_OK, 2, &res,
             err, errlen);
    if (st != OUTBOX_PG_OK)
        goto rollback;
    *rows = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    bad = strtoull(PQgetvalue(res, 0, 1), NULL, 10);
    PQclear(res);
    if (bad > 0) {
        st = OUTBOX_PG_OK;
        goto rollback;
    }
    if (dry_run) {
        *verdict = PRUNE_PG_DROPPED;
        return OUTBOX_PG_OK;
    }
    snprintf(sql, sizeof(sql), "ALTER TABLE %s.%s DETACH PARTITION %s.%s", rs, rn, ps, pn);
    if ((st = outbox_pg_command(conn, sql, "detaching the partition", err, errlen)) != OUTBOX_PG_OK)
        goto busy_or_fail;
    if (!keep) {
        snprintf(sql, sizeof(sql), "DROP TABLE %s.%s", ps, pn);
        if ((st = outbox_pg_command(conn, sql, "dropping the partition", err, errlen)) !=
            OUTBOX_PG_OK)
            goto rollback;
    }
    if ((st = outbox_pg_command(conn, "COMMIT", "COMMIT", err, errlen)) != OUTBOX_PG_OK)
        return st;
    *verdict = PRUNE_PG_DROPPED;
    return OUTBOX_PG_OK;

busy_or_fail:
    /* 55P03 lock_not_available (lock_timeout), 40P01 deadlock: next run. */
    if (st == OUTBOX_PG_ERETRY && PQstatus(conn) == CONNECTION_OK) {
        *verdict = PRUNE_PG_BUSY;
        st = OUTBOX_PG_OK;
    }
rollback:
    if (!dry_run)
        PQclear(PQexec(conn, "ROLLBACK"));
    return st;
}
