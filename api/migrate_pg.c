/*
 * The schema migrator behind orders-api --migrate: one session under an
 * advisory lock, each pending migration in its own transaction with its
 * schema_migrations row.
 */
#include "migrate_pg.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "log.h"
#include "pgparams.h"
#include "pgsession.h"

/* Runs sql expecting a command or tuples result; on failure fills errbuf with what. */
static int exec_ok(PGconn *conn, const char *sql, const char *what, char *errbuf, size_t errlen)
{
    PGresult *res = PQexec(conn, sql);
    ExecStatusType rs = PQresultStatus(res);

    if (rs != PGRES_COMMAND_OK && rs != PGRES_TUPLES_OK) {
        pgsession_classify(conn, res, what, errbuf, errlen);
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

    snprintf(sql, sizeof(sql), "SELECT pg_catalog.%s(%lld)", fn, (long long)MIGRATE_PG_LOCK_KEY);
    res = PQexec(conn, sql);
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        pgsession_classify(conn, res, fn, errbuf, errlen);
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
        pgsession_classify(conn, res, what, errbuf, errlen);
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

int migrate_pg_run(const char *database_url, int timeout_ms, const struct migration *migs,
                   int count, int *applied, int *version, char *errbuf, size_t errlen)
{
    struct pgparams params;
    PGconn *conn = NULL;
    PGresult *res = NULL;
    bool got = false, locked = false;
    int rc = -1, max_embedded = 0;

    *applied = 0;
    *version = 0;
    if (pgsession_params(&params, database_url, timeout_ms, false, errbuf, errlen) != 0)
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
        pgsession_flatten(errbuf, errlen, "cannot connect: ",
                          conn != NULL ? PQerrorMessage(conn) : "out of memory");
        goto out;
    }
    PQsetNoticeReceiver(conn, pgsession_notice, NULL);
    if (PQserverVersion(conn) < 130000) {
        snprintf(errbuf, errlen, "PostgreSQL 13 or newer is required (server is %d)",
                 PQserverVersion(conn));
        goto out;
    }
    if (lock_call(conn, "pg_try_advisory_lock", &got, errbuf, errlen) != 0)
        goto out;
    if (!got) {
        log_info("waiting for migration lock key=%lld", (long long)MIGRATE_PG_LOCK_KEY);
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
        pgsession_classify(conn, res, "read schema_migrations", errbuf, errlen);
        goto out;
    }
    for (int i = 0; i < count; i++) {
        bool done = false;
        int64_t t0;

        for (int r = 0; r < PQntuples(res) && !done; r++)
            done = int_value(res, r) == migs[i].version;
        if (done)
            continue;
        t0 = pgsession_now_us();
        if (apply_one(conn, &migs[i], errbuf, errlen) != 0)
            goto out;
        (*applied)++;
        log_info("migration applied version=%d name=\"%s\" duration_ms=%lld", migs[i].version,
                 migs[i].name, (long long)((pgsession_now_us() - t0) / 1000));
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
