/*
 * libpq for the polling relay: one connection, four statements per batch
 * (BEGIN, the batch SELECT, the mark UPDATE, COMMIT). SQL text comes from
 * cdc/poll_sql.c; this file only runs it and classifies failures.
 */
#include "poll_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "outbox_pg.h"
#include "pgconn.h"
#include "poll_sql.h"

#define STMT_SELECT "cdc_poll_select"
#define STMT_MARK   "cdc_poll_mark"

struct poll_pg {
    PGconn *conn;
    PGresult *batch; /* the last batch, until the next fetch */
    int ncols;       /* of the batch query: POLL_SQL_COL_HEADERS + header columns */
};

/* By the protocol and the SQLSTATE only (common/pgerr.h): connection loss,
 * transient server states and a session a new one cures (read-only) are
 * retried on a new connection; the rest (a missing table or column, missing
 * rights, bad SQL, anything unknown) needs a person. */
static enum poll_pg_status classify(const struct poll_pg *pp, const PGresult *res)
{
    switch (pgconn_result_kind(pp->conn, res)) {
    case PGERR_CONNECTION:
    case PGERR_TRANSIENT:
    case PGERR_SESSION:
    case PGERR_IN_USE:
        return POLL_PG_ERETRY;
    case PGERR_PERMANENT:
    case PGERR_LOGIN:
    case PGERR_SCHEMA:
        break;
    }
    return POLL_PG_EFATAL;
}

/* Runs a statement that returns no rows; on failure fills err with what. */
static enum poll_pg_status exec_cmd(struct poll_pg *pp, const char *sql, const char *what,
                                    char *err, size_t errlen)
{
    PGresult *res = PQexec(pp->conn, sql);
    enum poll_pg_status st = POLL_PG_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pgconn_set_err(err, errlen, "%s: %s", what, PQerrorMessage(pp->conn));
        st = classify(pp, res);
    }
    PQclear(res);
    return st;
}

/* The table, its columns and the rights the loop needs, checked once so a
 * misconfiguration is one clear error instead of a retry loop. */
static enum poll_pg_status check_table(struct poll_pg *pp, const char *schema, const char *table,
                                       const struct outbox_columns *cols,
                                       struct outbox_layout *layout, char *err, size_t errlen)
{
    struct outbox_pg_table t;
    enum outbox_pg_status ost =
        outbox_pg_inspect(pp->conn, schema, table, cols, layout, &t, err, errlen);

    if (ost != OUTBOX_PG_OK)
        return ost == OUTBOX_PG_EFATAL ? POLL_PG_EFATAL : POLL_PG_ERETRY;
    if (!t.exists) {
        pgconn_set_err(
            err, errlen,
            "table %s.%s does not exist in database \"%s\": run `orders-api --migrate` or set "
            "--table",
            schema, table, PQdb(pp->conn));
        return POLL_PG_EFATAL;
    }
    if (!t.has_published) {
        pgconn_set_err(
            err, errlen,
            "table %s.%s has no %s column, which --mode poll needs: run `orders-api "
            "--migrate` (sql/0004_outbox_published_at.sql) or ALTER TABLE ... ADD COLUMN %s "
            "timestamptz (--published-column names another)",
            schema, table, cols->published, cols->published);
        return POLL_PG_EFATAL;
    }
    if (layout->timestamp < 0 || layout->timestamp_kind == OUTBOX_TS_OTHER) {
        pgconn_set_err(err, errlen,
                       "table %s.%s has no column \"%s\" of type timestamptz, timestamp or bigint "
                       "(Unix milliseconds), which --mode poll orders the rows by "
                       "(--timestamp-column names another)",
                       schema, table, cols->timestamp);
        return POLL_PG_EFATAL;
    }
    if (!t.can_select || !t.can_update) {
        pgconn_set_err(
            err, errlen,
            "the role lacks SELECT or UPDATE on %s.%s, which --mode poll needs (GRANT SELECT, "
            "UPDATE ON ... TO <role>)",
            schema, table);
        return POLL_PG_EFATAL;
    }
    return POLL_PG_OK;
}

static enum poll_pg_status prepare(struct poll_pg *pp, const char *name, const char *sql, char *err,
                                   size_t errlen)
{
    PGresult *res = PQprepare(pp->conn, name, sql, 0, NULL);
    enum poll_pg_status st = POLL_PG_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pgconn_set_err(err, errlen, "cannot prepare the %s statement: %s", name,
                       PQerrorMessage(pp->conn));
        st = classify(pp, res);
    }
    PQclear(res);
    return st;
}

struct poll_pg *poll_pg_open(const char *dburl, const char *schema, const char *table,
                             const struct outbox_columns *cols, int connect_timeout_s, int stop_fd,
                             bool *commit_ts, struct outbox_layout *layout, enum poll_pg_status *st,
                             char *err, size_t errlen)
{
    char sql[POLL_SQL_MAX];
    struct pgconn_opts co = {
        .dburl = dburl,
        .application_name = "cdc-relay-poll",
        .connect_timeout_s = connect_timeout_s,
        .stop_fd = stop_fd,
    };
    struct poll_pg *pp = calloc(1, sizeof(*pp));
    enum pgconn_status pst;
    PGresult *res;

    if (pp == NULL) {
        pgconn_set_err(err, errlen, "out of memory");
        *st = POLL_PG_EFATAL;
        return NULL;
    }
    pp->conn = pgconn_open(&co, &pst, err, errlen);
    if (pp->conn == NULL) {
        char why[768];

        snprintf(why, sizeof(why), "%s", err);
        pgconn_set_err(err, errlen, "cannot connect to Postgres: %s", why);
        *st = pst == PGCONN_EFATAL  ? POLL_PG_EFATAL
              : pst == PGCONN_ESTOP ? POLL_PG_ESTOP
                                    : POLL_PG_ERETRY;
        poll_pg_close(pp);
        return NULL;
    }
    *st = check_table(pp, schema, table, cols, layout, err, errlen);
    if (*st != POLL_PG_OK)
        goto fail;
    res = PQexec(pp->conn, "SELECT pg_catalog.current_setting('track_commit_timestamp')::bool");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pgconn_set_err(err, errlen, "cannot read track_commit_timestamp: %s",
                       PQerrorMessage(pp->conn));
        *st = classify(pp, res);
        PQclear(res);
        goto fail;
    }
    *commit_ts = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    if (!poll_sql_select(schema, table, layout, *commit_ts, sql, sizeof(sql))) {
        pgconn_set_err(err, errlen, "table or column names of %s.%s are too long", schema, table);
        *st = POLL_PG_EFATAL;
        goto fail;
    }
    if ((*st = prepare(pp, STMT_SELECT, sql, err, errlen)) != POLL_PG_OK)
        goto fail;
    pp->ncols = POLL_SQL_COL_HEADERS + (int)layout->nheaders;
    if (!poll_sql_mark(schema, table, cols, sql, sizeof(sql))) {
        pgconn_set_err(err, errlen, "table or column names of %s.%s are too long", schema, table);
        *st = POLL_PG_EFATAL;
        goto fail;
    }
    if ((*st = prepare(pp, STMT_MARK, sql, err, errlen)) != POLL_PG_OK)
        goto fail;
    return pp;
fail:
    poll_pg_close(pp);
    return NULL;
}

enum poll_pg_status poll_pg_fetch(struct poll_pg *pp, int limit, int *nrows, char *err,
                                  size_t errlen)
{
    char lim[16];
    const char *params[1] = {lim};
    enum poll_pg_status st;

    PQclear(pp->batch);
    pp->batch = NULL;
    *nrows = 0;
    if ((st = exec_cmd(pp, "BEGIN", "BEGIN", err, errlen)) != POLL_PG_OK)
        return st;
    snprintf(lim, sizeof(lim), "%d", limit);
    pp->batch = PQexecPrepared(pp->conn, STMT_SELECT, 1, params, NULL, NULL, 0);
    if (PQresultStatus(pp->batch) != PGRES_TUPLES_OK || PQnfields(pp->batch) != pp->ncols) {
        pgconn_set_err(err, errlen, "batch query failed (SQLSTATE %s): %s",
                       pgconn_sqlstate(pp->batch), PQerrorMessage(pp->conn));
        st = classify(pp, pp->batch);
        PQclear(pp->batch);
        pp->batch = NULL;
        poll_pg_rollback(pp);
        return st == POLL_PG_OK ? POLL_PG_ERETRY : st;
    }
    *nrows = PQntuples(pp->batch);
    return POLL_PG_OK;
}

const char *poll_pg_value(const struct poll_pg *pp, int row, int col, size_t *len)
{
    if (PQgetisnull(pp->batch, row, col)) {
        *len = 0;
        return NULL;
    }
    *len = (size_t)PQgetlength(pp->batch, row, col);
    return PQgetvalue(pp->batch, row, col);
}

enum poll_pg_status poll_pg_mark_commit(struct poll_pg *pp, const char *ids, int expect, char *err,
                                        size_t errlen)
{
    const char *params[1] = {ids};
    PGresult *res = PQexecPrepared(pp->conn, STMT_MARK, 1, params, NULL, NULL, 0);
    enum poll_pg_status st;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pgconn_set_err(err, errlen, "marking the batch published failed (SQLSTATE %s): %s",
                       pgconn_sqlstate(res), PQerrorMessage(pp->conn));
        st = classify(pp, res);
        PQclear(res);
        poll_pg_rollback(pp);
        return st;
    }
    /* The rows are locked by this transaction: they cannot have gone. */
    if (atoi(PQcmdTuples(res)) != expect) {
        pgconn_set_err(err, errlen,
                       "marking the batch published touched %s rows, not %d; rolled back",
                       PQcmdTuples(res), expect);
        PQclear(res);
        poll_pg_rollback(pp);
        return POLL_PG_ERETRY;
    }
    PQclear(res);
    res = PQexec(pp->conn, "COMMIT");
    /* An aborted transaction answers COMMIT with the tag ROLLBACK. */
    if (PQresultStatus(res) != PGRES_COMMAND_OK || strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        pgconn_set_err(err, errlen, "COMMIT of the batch failed (SQLSTATE %s): %s",
                       pgconn_sqlstate(res), PQerrorMessage(pp->conn));
        st = classify(pp, res);
        PQclear(res);
        return st == POLL_PG_OK ? POLL_PG_ERETRY : st;
    }
    PQclear(res);
    return POLL_PG_OK;
}

void poll_pg_rollback(struct poll_pg *pp)
{
    if (PQstatus(pp->conn) == CONNECTION_OK)
        PQclear(PQexec(pp->conn, "ROLLBACK"));
}

bool poll_pg_ok(const struct poll_pg *pp)
{
    return pp != NULL && PQstatus(pp->conn) == CONNECTION_OK;
}

void poll_pg_close(struct poll_pg *pp)
{
    if (pp == NULL)
        return;
    PQclear(pp->batch);
    PQfinish(pp->conn);
    free(pp);
}
