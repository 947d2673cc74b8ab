/*
 * libpq for the commands that read the outbox table: catalog inspection into
 * the column layout, a range scan in single-row mode, an id lookup. Runs
 * SQL from cdc/poll_sql.c and classifies failures; logs nothing.
 */
#include "outbox_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "pgconn.h"
#include "poll_sql.h"
#include "xmem.h"

/* By the protocol and the SQLSTATE only (common/pgerr.h): connection loss
 * and passing server or session states are retried; a missing table or
 * column, missing rights, bad SQL or bad data (a timestamp out of range)
 * need a person. */
enum outbox_pg_status outbox_pg_classify(PGconn *conn, const PGresult *res)
{
    switch (pgconn_result_kind(conn, res)) {
    case PGERR_CONNECTION:
    case PGERR_TRANSIENT:
    case PGERR_SESSION:
    case PGERR_IN_USE:
        return OUTBOX_PG_ERETRY;
    case PGERR_PERMANENT:
    case PGERR_LOGIN:
    case PGERR_SCHEMA:
        break;
    }
    return OUTBOX_PG_EFATAL;
}

enum outbox_pg_status outbox_pg_command(PGconn *conn, const char *sql, const char *what, char *err,
                                        size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    enum outbox_pg_status st = OUTBOX_PG_OK;

    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pgconn_set_err(err, errlen, "%s failed: %s", what, PQerrorMessage(conn));
        st = outbox_pg_classify(conn, res);
    }
    PQclear(res);
    return st;
}

struct pg_conn *outbox_pg_connect(const char *dburl, const char *app, int connect_timeout_s,
                                  bool *fatal, char *err, size_t errlen)
{
    /* The relay's pinned session (cdc/pgconn.c) has TimeZone=UTC, which the
     * range query's timestamp columns are read in. */
    struct pgconn_opts co = {
        .dburl = dburl,
        .application_name = app,
        .connect_timeout_s = connect_timeout_s,
        .stop_fd = -1,
    };
    enum pgconn_status st;
    char why[768];
    PGconn *conn = pgconn_open(&co, &st, why, sizeof(why));

    if (conn == NULL) {
        pgconn_set_err(err, errlen, "cannot connect to Postgres: %s", why);
        *fatal = st == PGCONN_EFATAL;
        return NULL;
    }
    return conn;
}

void outbox_pg_close(struct pg_conn *conn)
{
    if (conn != NULL)
        PQfinish(conn);
}

/* pg_attribute's rows of the table into a relcache-shaped relation (names
 * borrowed from res) and the layout. */
static enum outbox_pg_status read_columns(PGconn *conn, const char *oid, const char *schema,
                                          const char *table, const struct outbox_columns *cols,
                                          struct outbox_layout *layout, bool *has_published,
                                          char *err, size_t errlen)
{
    const char *params[1] = {oid};
    PGresult *res =
        PQexecParams(conn,
                     "SELECT attname, atttypid::int8 FROM pg_catalog.pg_attribute WHERE attrelid = "
                     "$1::oid AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                     1, NULL, params, NULL, NULL, 0);
    struct relcache_rel rel = {.nspname = (char *)schema, .relname = (char *)table};
    enum outbox_pg_status st = OUTBOX_PG_OK;
    const char *missing = NULL;
    int n;

    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQnfields(res) != 2) {
        pgconn_set_err(err, errlen, "cannot read the columns of %s.%s: %s", schema, table,
                       PQerrorMessage(conn));
        st = outbox_pg_classify(conn, res);
        PQclear(res);
        return st;
    }
    n = PQntuples(res);
    rel.ncols = (uint16_t)(n > 1600 ? 1600 : n);
    rel.colnames = xcalloc(rel.ncols + 1u, sizeof(*rel.colnames));
    rel.typoids = xcalloc(rel.ncols + 1u, sizeof(*rel.typoids));
    for (int i = 0; i < rel.ncols; i++) {
        rel.colnames[i] = PQgetvalue(res, i, 0);
        rel.typoids[i] = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
    }
    if (outbox_layout_init(layout, cols, &rel, &missing) != OUTBOX_OK) {
        pgconn_set_err(err, errlen,
                       "table %s.%s has no column \"%s\"; the outbox needs the columns %s, %s, %s, "
                       "%s and %s (--id-column, --route-column, --key-column, --type-column, "
                       "--payload-column), and every --header-columns one",
                       schema, table, missing, cols->role[OUTBOX_COL_ID],
                       cols->role[OUTBOX_COL_AGGREGATE_TYPE], cols->role[OUTBOX_COL_AGGREGATE_ID],
                       cols->role[OUTBOX_COL_EVENT_TYPE], cols->role[OUTBOX_COL_PAYLOAD]);
        st = OUTBOX_PG_EFATAL;
    }
    *has_published = cols->published != NULL && relcache_column_index(&rel, cols->published) >= 0;
    /* The layout keeps positions and flags only, never these names. */
    free(rel.colnames);
    free(rel.typoids);
    PQclear(res);
    return st;
}

enum outbox_pg_status outbox_pg_inspect(struct pg_conn *conn, const char *schema, const char *table,
                                        const struct outbox_columns *cols,
                                        struct outbox_layout *layout, struct outbox_pg_table *t,
                                        char *err, size_t errlen)
{
    const char *params[2] = {schema, table};
    PGresult *res =
        PQexecParams(conn,
                     "SELECT c.oid IS NOT NULL, c.oid::int8,"
                     " c.oid IS NOT NULL AND pg_catalog.has_table_privilege(c.oid, 'SELECT'),"
                     " c.oid IS NOT NULL AND pg_catalog.has_table_privilege(c.oid, 'UPDATE')"
                     " FROM (SELECT (SELECT c.oid FROM pg_catalog.pg_class c"
                     "  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
                     "  WHERE n.nspname = $1 AND c.relname = $2) AS oid) AS c",
                     2, NULL, params, NULL, NULL, 0);
    enum outbox_pg_status st = OUTBOX_PG_OK;

    memset(t, 0, sizeof(*t));
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pgconn_set_err(err, errlen, "cannot inspect table %s.%s: %s", schema, table,
                       PQerrorMessage(conn));
        st = outbox_pg_classify(conn, res);
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") == 0) {
        t->exists = true;
        t->can_select = strcmp(PQgetvalue(res, 0, 2), "t") == 0;
        t->can_update = strcmp(PQgetvalue(res, 0, 3), "t") == 0;
        st = read_columns(conn, PQgetvalue(res, 0, 1), schema, table, cols, layout,
                          &t->has_published, err, errlen);
    }
    PQclear(res);
    return st;
}

enum outbox_pg_status outbox_pg_scan_range(struct pg_conn *conn, const char *schema,
                                           const char *table, const struct outbox_layout *layout,
                                           int64_t since_us, int64_t until_us, outbox_pg_row_fn fn,
                                           void *arg, uint64_t *nrows, char *err, size_t errlen)
{
    char sql[POLL_SQL_MAX], lo[24], hi[24];
    const char *params[2] = {lo, hi};
    enum outbox_pg_status st = OUTBOX_PG_OK;
    bool stopped = false;
    PGresult *res;

    *nrows = 0;
    if (!poll_sql_range(schema, table, layout, sql, sizeof(sql))) {
        pgconn_set_err(err, errlen, "table or column names of %s.%s are too long", schema, table);
        return OUTBOX_PG_EFATAL;
    }
    snprintf(lo, sizeof(lo), "%lld", (long long)since_us);
    snprintf(hi, sizeof(hi), "%lld", (long long)until_us);
    if (!PQsendQueryParams(conn, sql, 2, NULL, params, NULL, NULL, 0) ||
        !PQsetSingleRowMode(conn)) {
        pgconn_set_err(err, errlen, "row query failed: %s", PQerrorMessage(conn));
        return OUTBOX_PG_ERETRY;
    }
    /* Every result is read, also after a stop, so the connection is ready
     * for the next query. */
    while ((res = PQgetResult(conn)) != NULL) {
        ExecStatusType rs = PQresultStatus(res);

        if (rs == PGRES_SINGLE_TUPLE && !stopped) {
            const char *v[3];

            for (int c = 0; c < 3; c++)
                v[c] = PQgetisnull(res, 0, c) ? NULL : PQgetvalue(res, 0, c);
            (*nrows)++;
            if (!fn(arg, v[0], v[1], v[2]))
                stopped = true;
        } else if (rs != PGRES_SINGLE_TUPLE && rs != PGRES_TUPLES_OK && st == OUTBOX_PG_OK) {
            pgconn_set_err(err, errlen, "row query failed: %s", PQerrorMessage(conn));
            st = outbox_pg_classify(conn, res);
        }
        PQclear(res);
    }
    return st;
}

enum outbox_pg_status outbox_pg_ids_exist(struct pg_conn *conn, const char *schema,
                                          const char *table, const struct outbox_columns *cols,
                                          const char *const *ids, const int *lens, size_t n,
                                          bool *found, char *err, size_t errlen)
{
    char sql[1400], *array;
    const char *params[1];
    enum outbox_pg_status st = OUTBOX_PG_OK;
    PGresult *res;

    for (size_t i = 0; i < n; i++)
        found[i] = false;
    if (n == 0)
        return OUTBOX_PG_OK;
    if (!poll_sql_ids_exist(schema, table, cols, sql, sizeof(sql))) {
        pgconn_set_err(err, errlen, "table or column names of %s.%s are too long", schema, table);
        return OUTBOX_PG_EFATAL;
    }
    array = poll_sql_array(ids, lens, n);
    params[0] = array;
    res = PQexecParams(conn, sql, 1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        pgconn_set_err(err, errlen, "id lookup failed: %s", PQerrorMessage(conn));
        st = outbox_pg_classify(conn, res);
    } else {
        /* n is small (the messages no row of the range explains): a scan
         * of the answer per id is fine. */
        for (int r = 0; r < PQntuples(res); r++) {
            const char *v = PQgetvalue(res, r, 0);
            size_t vlen = (size_t)PQgetlength(res, r, 0);

            for (size_t i = 0; i < n; i++)
                if (!found[i] && (size_t)lens[i] == vlen && memcmp(ids[i], v, vlen) == 0)
                    found[i] = true;
        }
    }
    PQclear(res);
    free(array);
    return st;
}
