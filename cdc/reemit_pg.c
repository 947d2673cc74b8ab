/*
 * libpq for re-emit: the request written in one transaction, the slot's
 * progress, and the relay's cursor over the request's rows.
 */
#include "reemit_pg.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "lsn.h"
#include "pgconn.h"
#include "poll_sql.h"
#include "xmem.h"

#define REEMIT_SQL_MAX (POLL_SQL_MAX + 4096)

/* One row, one column; NULL with err and *st set otherwise (PQclear it). */
static PGresult *query1(PGconn *conn, const char *sql, int nparams, const char *const *params,
                        const char *what, enum outbox_pg_status *st, char *err, size_t errlen)
{
    PGresult *res = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);

    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && PQnfields(res) >= 1) {
        *st = OUTBOX_PG_OK;
        return res;
    }
    pgconn_set_err(err, errlen, "%s: %s", what,
                   PQresultStatus(res) == PGRES_TUPLES_OK ? "no row" : PQerrorMessage(conn));
    *st = PQresultStatus(res) == PGRES_TUPLES_OK ? OUTBOX_PG_EFATAL : outbox_pg_classify(conn, res);
    PQclear(res);
    return NULL;
}

enum outbox_pg_status reemit_pg_request(struct pg_conn *conn, struct reemit_request *req,
                                        uint64_t *request_lsn, uint64_t *done_lsn, char *err,
                                        size_t errlen)
{
    enum outbox_pg_status st;
    const char *params[2];
    char *json = NULL;
    PGresult *res;

    /* The snapshot of this transaction decides which rows exist for the
     * request: exactly what a SELECT here would see. The commit is made
     * durable before it returns, so the write position after it covers it. */
    st = outbox_pg_command(
        conn, "BEGIN ISOLATION LEVEL REPEATABLE READ; SET LOCAL synchronous_commit TO on", "BEGIN",
        err, errlen);
    if (st != OUTBOX_PG_OK)
        return st;
    res = query1(conn, "SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text", 0, NULL,
                 "cannot read the snapshot", &st, err, errlen);
    if (res == NULL)
        goto fail;
    free(req->snapshot);
    req->snapshot = xstrdup(PQgetvalue(res, 0, 0));
    PQclear(res);
    json = reemit_request_format(req);
    if (json == NULL) {
        pgconn_set_err(err, errlen, "the request does not fit");
        st = OUTBOX_PG_EFATAL;
        goto fail;
    }
    params[0] = REEMIT_PREFIX;
    params[1] = json;
    res = query1(conn,
                 "SELECT pg_catalog.pg_logical_emit_message(true, $1::pg_catalog.text, "
                 "$2::pg_catalog.text)::pg_catalog.text",
                 2, params, "cannot write the request (pg_logical_emit_message)", &st, err, errlen);
    free(json);
    if (res == NULL)
        goto fail;
    if (!lsn_parse(PQgetvalue(res, 0, 0), request_lsn)) {
        pgconn_set_err(err, errlen, "pg_logical_emit_message returned \"%s\"",
                       PQgetvalue(res, 0, 0));
        PQclear(res);
        st = OUTBOX_PG_EFATAL;
        goto fail;
    }
    PQclear(res);
    res = PQexec(conn, "COMMIT");
    /* An aborted transaction answers COMMIT with the tag ROLLBACK. */
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        pgconn_set_err(err, errlen, "COMMIT of the request failed: %s", PQerrorMessage(conn));
        st = PQresultStatus(res) == PGRES_COMMAND_OK ? OUTBOX_PG_ERETRY
                                                     : outbox_pg_classify(conn, res);
        PQclear(res);
        return st;
    }
    PQclear(res);
    res = query1(conn, "SELECT pg_catalog.pg_current_wal_lsn()::pg_catalog.text", 0, NULL,
                 "cannot read the WAL position", &st, err, errlen);
    if (res == NULL)
        return st;
    if (!lsn_parse(PQgetvalue(res, 0, 0), done_lsn)) {
        pgconn_set_err(err, errlen, "pg_current_wal_lsn returned \"%s\"", PQgetvalue(res, 0, 0));
        st = OUTBOX_PG_EFATAL;
    }
    PQclear(res);
    return st;
fail:
    if (PQstatus(conn) == CONNECTION_OK)
        PQclear(PQexec(conn, "ROLLBACK"));
    return st;
}

enum outbox_pg_status reemit_pg_position(struct pg_conn *conn, const char *slot, bool *exists,
                                         bool *active, uint64_t *delivered, char *err,
                                         size_t errlen)
{
    const char *params[1] = {slot};
    PGresult *res = PQexecParams(
        conn,
        "SELECT s.active, GREATEST(s.confirmed_flush_lsn, r.replay_lsn)::pg_catalog.text"
        " FROM pg_catalog.pg_replication_slots AS s LEFT JOIN pg_catalog.pg_stat_replication AS r"
        " ON r.pid = s.active_pid WHERE s.slot_name = $1",
        1, NULL, params, NULL, NULL, 0);

    *exists = false;
    *active = false;
    *delivered = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        enum outbox_pg_status st = outbox_pg_classify(conn, res);

        pgconn_set_err(err, errlen, "cannot read slot \"%s\": %s", slot, PQerrorMessage(conn));
        PQclear(res);
        return st;
    }
    if (PQntuples(res) == 1) {
        *exists = true;
        *active = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        if (!PQgetisnull(res, 0, 1) && !lsn_parse(PQgetvalue(res, 0, 1), delivered))
            *delivered = 0;
    }
    PQclear(res);
    return OUTBOX_PG_OK;
}

/* The server tracks commit timestamps (then they are the row time). */
static enum outbox_pg_status commit_ts_tracked(PGconn *conn, bool *on, char *err, size_t errlen)
{
    enum outbox_pg_status st;
    PGresult *res =
        query1(conn, "SELECT pg_catalog.current_setting('track_commit_timestamp')::pg_catalog.bool",
               0, NULL, "cannot read track_commit_timestamp", &st, err, errlen);

    if (res != NULL) {
        *on = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
        PQclear(res);
    }
    return st;
}

/* The parameters of reemit_sql_select for req, into lo/hi. */
static void range_params(const struct reemit_request *req, char lo[24], char hi[24],
                         const char *params[3])
{
    if (req->kind == REEMIT_IDS) {
        params[0] = req->first_id;
        params[1] = req->last_id;
    } else {
        snprintf(lo, 24, "%lld", (long long)req->since_us);
        snprintf(hi, 24, "%lld", (long long)req->until_us);
        params[0] = lo;
        params[1] = hi;
    }
    params[2] = req->snapshot;
}

/* Inspects the table into layout; EFATAL when it is missing or unreadable. */
static enum outbox_pg_status table_layout(PGconn *conn, const char *schema, const char *table,
                                          const struct outbox_columns *cols,
                                          const struct reemit_request *req,
                                          struct outbox_layout *layout, char *err, size_t errlen)
{
    struct outbox_pg_table t;
    enum outbox_pg_status st =
        outbox_pg_inspect(conn, schema, table, cols, layout, &t, err, errlen);

    if (st != OUTBOX_PG_OK)
        return st;
    if (!t.exists || !t.can_select) {
        pgconn_set_err(err, errlen, "table %s.%s %s in database \"%s\"; re-emit reads its rows",
                       schema, table,
                       t.exists ? "is not readable by this role (GRANT SELECT)" : "does not exist",
                       PQdb(conn));
        return OUTBOX_PG_EFATAL;
    }
    if (req->kind == REEMIT_TIME &&
        (layout->timestamp < 0 || layout->timestamp_kind == OUTBOX_TS_OTHER)) {
        pgconn_set_err(err, errlen,
                       "table %s.%s has no column \"%s\" of type timestamptz, timestamp or bigint "
                       "(Unix milliseconds) for a time range (--timestamp-column names another)",
                       schema, table, cols->timestamp);
        return OUTBOX_PG_EFATAL;
    }
    return OUTBOX_PG_OK;
}

enum outbox_pg_status reemit_pg_count(struct pg_conn *conn, const char *schema, const char *table,
                                      const struct outbox_columns *cols,
                                      const struct reemit_request *req, uint64_t *count, char *err,
                                      size_t errlen)
{
    struct outbox_layout layout;
    char sql[REEMIT_SQL_MAX + 64], lo[24], hi[24];
    const char *params[3];
    enum outbox_pg_status st = table_layout(conn, schema, table, cols, req, &layout, err, errlen);
    PGresult *res;
    int n;

    char *snapshot = req->snapshot;

    if (st != OUTBOX_PG_OK)
        return st;
    if (snapshot == NULL) {
        res = query1(conn, "SELECT pg_catalog.pg_current_snapshot()::pg_catalog.text", 0, NULL,
                     "cannot read the snapshot", &st, err, errlen);
        if (res == NULL)
            return st;
        snapshot = xstrdup(PQgetvalue(res, 0, 0));
        PQclear(res);
    }
    n = snprintf(sql, sizeof(sql), "SELECT pg_catalog.count(*) FROM (");
    if (!reemit_sql_select(schema, table, &layout, req->kind, false, sql + n,
                           sizeof(sql) - (size_t)n - 8)) {
        pgconn_set_err(err, errlen, "table or column names of %s.%s are too long", schema, table);
        if (snapshot != req->snapshot)
            free(snapshot);
        return OUTBOX_PG_EFATAL;
    }
    strcat(sql, ") AS r");
    range_params(req, lo, hi, params);
    params[2] = snapshot;
    res = query1(conn, sql, 3, params, "cannot read the rows of the range", &st, err, errlen);
    if (snapshot != req->snapshot)
        free(snapshot);
    if (res == NULL)
        return st;
    *count = strtoull(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return OUTBOX_PG_OK;
}

struct reemit_cursor {
    PGconn *conn;
    PGresult *batch;
    int ncols;
};

struct reemit_cursor *reemit_pg_open(const char *dburl, int connect_timeout_s, const char *schema,
                                     const char *table, const struct outbox_columns *cols,
                                     const struct reemit_request *req, struct outbox_layout *layout,
                                     enum outbox_pg_status *st, char *err, size_t errlen)
{
    struct reemit_cursor *c = xcalloc(1, sizeof(*c));
    char sql[REEMIT_SQL_MAX], decl[REEMIT_SQL_MAX + 64], lo[24], hi[24];
    const char *params[3];
    bool fatal = false, commit_ts = false;
    PGresult *res;

    c->conn = outbox_pg_connect(dburl, "cdc-relay-reemit", connect_timeout_s, &fatal, err, errlen);
    if (c->conn == NULL) {
        *st = fatal ? OUTBOX_PG_EFATAL : OUTBOX_PG_ERETRY;
        free(c);
        return NULL;
    }
    if ((*st = table_layout(c->conn, schema, table, cols, req, layout, err, errlen)) !=
            OUTBOX_PG_OK ||
        (*st = commit_ts_tracked(c->conn, &commit_ts, err, errlen)) != OUTBOX_PG_OK)
        goto fail;
    if (!reemit_sql_select(schema, table, layout, req->kind, commit_ts, sql, sizeof(sql))) {
        pgconn_set_err(err, errlen, "table or column names of %s.%s are too long", schema, table);
        *st = OUTBOX_PG_EFATAL;
        goto fail;
    }
    c->ncols = POLL_SQL_COL_HEADERS + (int)layout->nheaders;
    /* One snapshot and one sort for the whole request, read in batches;
     * a cursor's parameters are bound once, at DECLARE. */
    *st = outbox_pg_command(c->conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "BEGIN",
                            err, errlen);
    if (*st != OUTBOX_PG_OK)
        goto fail;
    snprintf(decl, sizeof(decl), "DECLARE cdc_reemit NO SCROLL CURSOR FOR %s", sql);
    range_params(req, lo, hi, params);
    res = PQexecParams(c->conn, decl, 3, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pgconn_set_err(err, errlen, "cannot open the re-emit cursor: %s", PQerrorMessage(c->conn));
        *st = outbox_pg_classify(c->conn, res);
        PQclear(res);
        goto fail;
    }
    PQclear(res);
    return c;
fail:
    reemit_pg_close(c);
    return NULL;
}

enum outbox_pg_status reemit_pg_fetch(struct reemit_cursor *c, int limit, bool (*wait)(void *arg),
                                      void *arg, bool *stopped, int *nrows, char *err,
                                      size_t errlen)
{
    char sql[64];
    PGresult *res;

    PQclear(c->batch);
    c->batch = NULL;
    *nrows = 0;
    *stopped = false;
    snprintf(sql, sizeof(sql), "FETCH FORWARD %d FROM cdc_reemit", limit);
    if (!PQsendQuery(c->conn, sql)) {
        pgconn_set_err(err, errlen, "re-emit fetch failed: %s", PQerrorMessage(c->conn));
        return OUTBOX_PG_ERETRY;
    }
    /* The first fetch sorts the whole range: however long that takes, the
     * caller keeps its replication stream answered. */
    while (PQisBusy(c->conn)) {
        struct pollfd p = {.fd = PQsocket(c->conn), .events = POLLIN};

        (void)poll(&p, 1, 1000);
        if (!PQconsumeInput(c->conn)) {
            pgconn_set_err(err, errlen, "re-emit fetch failed: %s", PQerrorMessage(c->conn));
            return OUTBOX_PG_ERETRY;
        }
        if (PQisBusy(c->conn) && !wait(arg)) {
            *stopped = true; /* reemit_pg_close ends the session, and the query */
            return OUTBOX_PG_OK;
        }
    }
    c->batch = PQgetResult(c->conn);
    while ((res = PQgetResult(c->conn)) != NULL)
        PQclear(res);
    if (PQresultStatus(c->batch) != PGRES_TUPLES_OK || PQnfields(c->batch) != c->ncols) {
        enum outbox_pg_status st = outbox_pg_classify(c->conn, c->batch);

        pgconn_set_err(err, errlen, "re-emit fetch failed: %s", PQerrorMessage(c->conn));
        PQclear(c->batch);
        c->batch = NULL;
        return st == OUTBOX_PG_OK ? OUTBOX_PG_ERETRY : st;
    }
    *nrows = PQntuples(c->batch);
    return OUTBOX_PG_OK;
}

const char *reemit_pg_value(const struct reemit_cursor *c, int row, int col, size_t *len)
{
    if (PQgetisnull(c->batch, row, col)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)PQgetlength(c->batch, row, col);
    return PQgetvalue(c->batch, row, col);
}

void reemit_pg_close(struct reemit_cursor *c)
{
    if (c == NULL)
        return;
    PQclear(c->batch);
    outbox_pg_close(c->conn); /* the read-only transaction ends with the session */
    free(c);
}
