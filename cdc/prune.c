/*
 * cdc-relay prune: the order of the steps is what makes it safe (see
 * prune.h): the horizon first, then the wait for the delivered position,
 * then the deletes, each batch with a predicate that names the horizon.
 */
#include "prune.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "lsn.h"
#include "outbox_pg.h"
#include "pgtime.h"
#include "prune_pg.h"
#include "prune_sql.h"
#include "state.h"

/* How often the delivered position is asked for while waiting for it. */
#define WAIT_STEP_MS 500
/* A progress line at most this often. */
#define PROGRESS_EVERY_S 10.0

uint64_t prune_delivered(uint64_t slot_confirmed, bool state_matches, uint64_t state_lsn)
{
    return state_matches && state_lsn > slot_confirmed ? state_lsn : slot_confirmed;
}

static double mono_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static bool stopped(const struct prune_config *cfg)
{
    return cfg->stop != NULL && *cfg->stop;
}

/* Sleeps ms, cut short by a stop request (the signal interrupts it). */
static void pause_ms(const struct prune_config *cfg, int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

    while (!stopped(cfg) && nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

struct run {
    const struct prune_config *cfg;
    struct pg_conn *conn;
    struct outbox_layout layout;
    struct prune_pg_bounds bounds;
    char horizon[32];
    double t0;
    char err[1024];
};

/*
 * Stream mode: L and H, then the wait until the delivered position reaches
 * L. Returns PRUNE_EXIT_OK with run->bounds.horizon set, or the exit status.
 */
static int wait_delivered(struct run *run)
{
    const struct prune_config *cfg = run->cfg;
    struct relay_state state;
    bool state_matches = false;
    uint64_t target, delivered = 0;
    char systemid[32], l_text[32], d_text[32];
    double deadline;
    int loaded = 0;

    if (prune_pg_horizon(run->conn, &target, run->horizon, sizeof(run->horizon), run->err,
                         sizeof(run->err)) != OUTBOX_PG_OK) {
        log_error("%s", run->err);
        return PRUNE_EXIT_ERROR;
    }
    run->bounds.horizon = run->horizon;
    lsn_format(target, l_text, sizeof(l_text));
    if (cfg->state_file != NULL) {
        loaded = state_load(cfg->state_file, &state, run->err, sizeof(run->err));
        if (loaded < 0)
            log_warn("%s; going by the slot alone", run->err);
        if (loaded > 0 && prune_pg_systemid(run->conn, systemid, sizeof(systemid), run->err,
                                            sizeof(run->err)) != OUTBOX_PG_OK) {
            log_error("%s", run->err);
            return PRUNE_EXIT_ERROR;
        }
        if (loaded > 0 && strcmp(state.slot, cfg->slot) == 0 &&
            strcmp(state.systemid, systemid) == 0)
            state_matches = true;
        else if (loaded > 0)
            log_warn("state file %s is for slot \"%s\" of system %s, not slot \"%s\" of %s%s; "
                     "going by the slot alone",
                     cfg->state_file, state.slot, state.systemid, cfg->slot,
                     *systemid != '\0' ? systemid : "this server",
                     *systemid != '\0' ? "" : " (pg_control_system() is not readable)");
    }
    log_info("prune: rows whose transaction precedes xid %s committed before %s; waiting up to "
             "%d ms for slot \"%s\"%s to confirm it",
             run->horizon, l_text, cfg->wait_ms, cfg->slot,
             state_matches ? " or the state file" : "");
    deadline = mono_s() + cfg->wait_ms / 1000.0;
    for (;;) {
        struct prune_pg_slot slot;

        if (prune_pg_slot(run->conn, cfg->slot, &slot, run->err, sizeof(run->err)) !=
            OUTBOX_PG_OK) {
            log_error("%s", run->err);
            return PRUNE_EXIT_ERROR;
        }
        if (!slot.exists || !slot.usable) {
            log_error("replication slot \"%s\" %s: without it nothing is known to be delivered, "
                      "so nothing is pruned",
                      cfg->slot, !slot.exists ? "does not exist (--slot)" : slot.why);
            return PRUNE_EXIT_NO_SLOT;
        }
        if (state_matches && loaded > 0 &&
            state_load(cfg->state_file, &state, run->err, sizeof(run->err)) < 0) {
            log_error("%s", run->err);
            return PRUNE_EXIT_ERROR;
        }
        delivered = prune_delivered(slot.confirmed_flush, state_matches, state.lsn);
        if (delivered >= target)
            break;
        if (mono_s() >= deadline || stopped(cfg)) {
            lsn_format(delivered, d_text, sizeof(d_text));
            log_error("the delivered position %s (slot \"%s\"%s) did not reach %s within %d ms: "
                      "is the relay running and caught up? With --replay-window the slot's "
                      "position stays that far behind; run prune with the relay's --state-file, "
                      "or a longer --confirm-timeout",
                      d_text, cfg->slot, state_matches ? ", state file" : "", l_text, cfg->wait_ms);
            return PRUNE_EXIT_BEHIND;
        }
        pause_ms(cfg, WAIT_STEP_MS);
    }
    lsn_format(delivered, d_text, sizeof(d_text));
    log_info("prune: delivered up to %s (>= %s)", d_text, l_text);
    return PRUNE_EXIT_OK;
}

static bool over_time(const struct run *run)
{
    return run->cfg->max_duration_ms > 0 &&
           mono_s() - run->t0 >= run->cfg->max_duration_ms / 1000.0;
}

/* An ordinary table: batches along the heap. */
static int prune_rows(struct run *run, uint64_t *deleted_total, uint64_t *batches, bool *cut)
{
    const struct prune_config *cfg = run->cfg;
    char sql[PRUNE_SQL_MAX], last[32] = "(0,0)";
    double last_log = mono_s();

    if (cfg->dry_run) {
        if (!prune_sql_count(cfg->table_schema, cfg->table_name, &run->layout, cfg->poll_mode, sql,
                             sizeof(sql)) ||
            prune_pg_count(run->conn, sql, &run->bounds, deleted_total, run->err,
                           sizeof(run->err)) != OUTBOX_PG_OK) {
            log_error("%s", *run->err != '\0' ? run->err : "table or column names too long");
            return PRUNE_EXIT_ERROR;
        }
        return PRUNE_EXIT_OK;
    }
    if (!prune_sql_batch(cfg->table_schema, cfg->table_name, &run->layout, cfg->poll_mode, sql,
                         sizeof(sql))) {
        log_error("table or column names of %s.%s are too long", cfg->table_schema,
                  cfg->table_name);
        return PRUNE_EXIT_ERROR;
    }
    for (;;) {
        uint64_t locked, deleted;

        if (stopped(cfg) || over_time(run)) {
            *cut = true;
            break;
        }
        if (prune_pg_batch(run->conn, sql, &run->bounds, last, sizeof(last), cfg->batch_size,
                           &locked, &deleted, run->err, sizeof(run->err)) != OUTBOX_PG_OK) {
            log_error("%s (%llu rows deleted before)", run->err,
                      (unsigned long long)*deleted_total);
            return PRUNE_EXIT_ERROR;
        }
        (*batches)++;
        *deleted_total += deleted;
        if (locked < (uint64_t)cfg->batch_size)
            break; /* the end of the heap */
        if (mono_s() - last_log >= PROGRESS_EVERY_S) {
            last_log = mono_s();
            log_info("prune: %llu rows deleted so far (at tuple %s)",
                     (unsigned long long)*deleted_total, last);
        }
        if (cfg->batch_pause_ms > 0)
            pause_ms(cfg, cfg->batch_pause_ms);
    }
    return PRUNE_EXIT_OK;
}

/* A partitioned table: whole partitions. */
static int prune_partitions(struct run *run, uint64_t *deleted_total, uint64_t *dropped, bool *cut)
{
    const struct prune_config *cfg = run->cfg;
    struct prune_pg_partition *parts = NULL;
    char sql[PRUNE_SQL_MAX];
    size_t n = 0;
    bool ok;
    int rc = PRUNE_EXIT_ERROR;

    if (prune_pg_partitioning(run->conn, cfg->table_schema, cfg->table_name,
                              cfg->columns->timestamp, &ok, run->err,
                              sizeof(run->err)) != OUTBOX_PG_OK) {
        log_error("%s", run->err);
        return PRUNE_EXIT_ERROR;
    }
    if (!ok) {
        log_error("table %s.%s is partitioned, but not by RANGE on \"%s\" alone: prune drops "
                  "whole partitions by their upper bound, and cannot tell which of these hold "
                  "only old rows (docs/operations.md#a-partitioned-outbox)",
                  cfg->table_schema, cfg->table_name, cfg->columns->timestamp);
        return PRUNE_EXIT_ERROR;
    }
    if (!prune_sql_partitions(&run->layout, sql, sizeof(sql)) ||
        prune_pg_partitions(run->conn, sql, cfg->table_schema, cfg->table_name,
                            run->bounds.cutoff_us, &parts, &n, run->err,
                            sizeof(run->err)) != OUTBOX_PG_OK) {
        log_error("%s", *run->err != '\0' ? run->err : "table or column names too long");
        return PRUNE_EXIT_ERROR;
    }
    for (size_t i = 0; i < n; i++) {
        const struct prune_pg_partition *p = &parts[i];
        char check[PRUNE_SQL_MAX];
        enum prune_pg_verdict verdict;
        uint64_t rows;

        if (!p->ends_before_cutoff)
            continue;
        if (p->relkind != 'r') {
            log_warn("prune: partition %s.%s is itself partitioned; left alone", p->schema,
                     p->name);
            continue;
        }
        if (stopped(cfg) || over_time(run)) {
            *cut = true;
            break;
        }
        if (!prune_sql_partition_check(p->schema, p->name, &run->layout, cfg->poll_mode, check,
                                       sizeof(check)) ||
            prune_pg_partition_drop(run->conn, cfg->table_schema, cfg->table_name, p, check,
                                    &run->bounds, cfg->keep_detached, cfg->dry_run,
                                    cfg->lock_timeout_ms, &rows, &verdict, run->err,
                                    sizeof(run->err)) != OUTBOX_PG_OK) {
            log_error("partition %s.%s: %s", p->schema, p->name,
                      *run->err != '\0' ? run->err : "names too long");
            goto out;
        }
        switch (verdict) {
        case PRUNE_PG_DROPPED:
            *deleted_total += rows;
            (*dropped)++;
            log_info("prune: partition %s.%s (%s, %llu rows) %s", p->schema, p->name, p->bound,
                     (unsigned long long)rows,
                     cfg->dry_run         ? "would be removed"
                     : cfg->keep_detached ? "detached (kept as a table)"
                                          : "detached and dropped");
            break;
        case PRUNE_PG_KEPT:
            log_info("prune: partition %s.%s (%s, %llu rows) kept: some rows are newer than the "
                     "cutoff or not known delivered",
                     p->schema, p->name, p->bound, (unsigned long long)rows);
            break;
        case PRUNE_PG_BUSY:
            log_warn("prune: partition %s.%s kept for now: %s", p->schema, p->name, run->err);
            break;
        }
    }
    rc = PRUNE_EXIT_OK;
out:
    free(parts);
    return rc;
}

int prune_run(const struct prune_config *cfg)
{
    struct run run = {.cfg = cfg, .t0 = mono_s()};
    struct outbox_pg_table t;
    uint64_t deleted = 0, units = 0;
    bool fatal = false, partitioned = false, cut = false;
    char cutoff[OUTBOX_TS_LEN + 1];
    double took;
    int rc = PRUNE_EXIT_ERROR;

    run.bounds.cutoff_us = cfg->now_us - cfg->older_than_s * 1000000;
    outbox_format_timestamp(pgtime_from_unix_us(run.bounds.cutoff_us), cutoff, sizeof(cutoff));
    run.conn = outbox_pg_connect(cfg->database_url, "cdc-relay-prune", cfg->connect_timeout_s,
                                 &fatal, run.err, sizeof(run.err));
    if (run.conn == NULL) {
        log_error("%s", run.err);
        return PRUNE_EXIT_ERROR;
    }
    if (outbox_pg_inspect(run.conn, cfg->table_schema, cfg->table_name, cfg->columns, &run.layout,
                          &t, run.err, sizeof(run.err)) != OUTBOX_PG_OK ||
        (t.exists && prune_pg_relkind(run.conn, cfg->table_schema, cfg->table_name, &partitioned,
                                      run.err, sizeof(run.err)) != OUTBOX_PG_OK)) {
        log_error("%s", run.err);
        goto out;
    }
    if (!t.exists) {
        log_error("table %s.%s does not exist (--table)", cfg->table_schema, cfg->table_name);
        goto out;
    }
    if (run.layout.timestamp < 0 || run.layout.timestamp_kind == OUTBOX_TS_OTHER) {
        log_error("table %s.%s has no column \"%s\" of type timestamptz, timestamp or bigint "
                  "(Unix milliseconds) to tell old rows by (--timestamp-column)",
                  cfg->table_schema, cfg->table_name, cfg->columns->timestamp);
        goto out;
    }
    if (cfg->poll_mode && !t.has_published) {
        log_error("table %s.%s has no column \"%s\" (--published-column): poll mode marks "
                  "delivered rows there, and prune deletes only marked rows",
                  cfg->table_schema, cfg->table_name, cfg->columns->published);
        goto out;
    }
    log_info("prune: %s.%s, rows with %s before %s%s%s", cfg->table_schema, cfg->table_name,
             cfg->columns->timestamp, cutoff, cfg->poll_mode ? " and published" : "",
             cfg->dry_run ? " (dry run)" : "");
    if (!cfg->poll_mode) {
        rc = wait_delivered(&run);
        if (rc != PRUNE_EXIT_OK)
            goto out;
    }
    run.t0 = mono_s(); /* --max-duration and the rate count the deleting only */
    rc = partitioned ? prune_partitions(&run, &deleted, &units, &cut)
                     : prune_rows(&run, &deleted, &units, &cut);
    if (rc != PRUNE_EXIT_OK)
        goto out;
    took = mono_s() - run.t0;
    if (partitioned)
        fprintf(cfg->out, "prune: %s.%s before %s: %llu partitions %s (%llu rows) in %.1f s%s\n",
                cfg->table_schema, cfg->table_name, cutoff, (unsigned long long)units,
                cfg->dry_run         ? "would be removed"
                : cfg->keep_detached ? "detached"
                                     : "dropped",
                (unsigned long long)deleted, took, cut ? "; stopped early, run again" : "");
    else
        fprintf(cfg->out,
                "prune: %s.%s before %s: %llu rows %s in %llu batches, %.1f s (%.0f rows/s)%s\n",
                cfg->table_schema, cfg->table_name, cutoff, (unsigned long long)deleted,
                cfg->dry_run ? "would be deleted" : "deleted", (unsigned long long)units, took,
                took > 0 ? (double)deleted / took : 0.0, cut ? "; stopped early, run again" : "");
    fflush(cfg->out);
out:
    outbox_pg_close(run.conn);
    return rc;
}
