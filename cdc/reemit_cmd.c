/*
 * The re-emit command: check, request, report, wait.
 */
#include "reemit_cmd.h"

#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "lsn.h"
#include "pace.h"
#include "reemit_pg.h"

#define WAIT_POLL_MS 500

static void describe(const struct reemit_request *req, char *buf, size_t buflen)
{
    if (req->kind == REEMIT_IDS)
        snprintf(buf, buflen, "ids %s..%s", req->first_id, req->last_id);
    else
        snprintf(buf, buflen, "time %lld..%lld (Unix us)", (long long)req->since_us,
                 (long long)req->until_us);
}

/* Polls the slot until its relay delivered up to done_lsn. */
static int wait_delivered(const struct reemit_cmd_config *cfg, struct pg_conn *conn,
                          uint64_t done_lsn, uint64_t rows)
{
    int64_t t0 = pace_monotonic_us();
    int64_t deadline = t0 + (int64_t)cfg->wait_timeout_ms * 1000;
    bool told_inactive = false;
    char err[1024];

    for (;;) {
        bool exists, active;
        uint64_t delivered;
        enum outbox_pg_status st =
            reemit_pg_position(conn, cfg->slot, &exists, &active, &delivered, err, sizeof(err));
        int64_t now = pace_monotonic_us();

        if (st != OUTBOX_PG_OK) {
            log_error("%s", err);
            return REEMIT_EXIT_ERROR;
        }
        if (!exists) {
            log_error("slot \"%s\" is gone: the request will not be served", cfg->slot);
            return REEMIT_EXIT_ERROR;
        }
        if (delivered >= done_lsn) {
            double secs = (double)(now - t0) / 1e6;

            fprintf(cfg->out, "delivered: %llu rows in %.1f s (%.0f rows/s)\n",
                    (unsigned long long)rows, secs, secs > 0 ? (double)rows / secs : 0.0);
            fflush(cfg->out);
            return REEMIT_EXIT_OK;
        }
        if (!active && !told_inactive) {
            log_warn("no relay streams slot \"%s\" now; the request is served when one does",
                     cfg->slot);
            told_inactive = true;
        }
        if (now >= deadline) {
            log_error("not delivered within --wait-timeout: the slot's relay is at " LSN_FMT
                      ", the request needs " LSN_FMT "; it stays in the WAL and is served "
                      "when the relay gets there",
                      LSN_ARGS(delivered), LSN_ARGS(done_lsn));
            return REEMIT_EXIT_TIMEOUT;
        }
        (void)poll(NULL, 0, WAIT_POLL_MS);
    }
}

int reemit_cmd_run(const struct reemit_cmd_config *cfg)
{
    struct reemit_request *req = cfg->req;
    char err[1024], what[600], lsn_text[LSN_STR_MAX];
    bool fatal = false, exists, active;
    uint64_t rows = 0, request_lsn = 0, done_lsn = 0, delivered;
    enum outbox_pg_status st;
    struct pg_conn *conn;
    int rc = REEMIT_EXIT_ERROR;

    snprintf(req->slot, sizeof(req->slot), "%s", cfg->slot);
    describe(req, what, sizeof(what));
    conn = outbox_pg_connect(cfg->database_url, "cdc-relay-reemit", cfg->connect_timeout_s, &fatal,
                             err, sizeof(err));
    if (conn == NULL) {
        log_error("%s", err);
        return REEMIT_EXIT_ERROR;
    }
    st = reemit_pg_position(conn, cfg->slot, &exists, &active, &delivered, err, sizeof(err));
    if (st == OUTBOX_PG_OK && !exists) {
        snprintf(err, sizeof(err),
                 "there is no slot \"%s\": no relay would serve the request (--slot names the "
                 "relay's)",
                 cfg->slot);
        st = OUTBOX_PG_EFATAL;
    }
    /* The relay's own query, run here first: a request it could not serve
     * would stop it at that place in the WAL. */
    if (st == OUTBOX_PG_OK)
        st = reemit_pg_count(conn, cfg->table_schema, cfg->table_name, cfg->columns, req, &rows,
                             err, sizeof(err));
    if (st == OUTBOX_PG_OK)
        st = reemit_pg_request(conn, req, &request_lsn, &done_lsn, err, sizeof(err));
    if (st != OUTBOX_PG_OK) {
        log_error("%s", err);
        goto out;
    }
    fprintf(cfg->out,
            "request %s for slot %s: %llu rows of %s.%s, %s\n"
            "served once the slot's relay has delivered up to " LSN_FMT "\n",
            lsn_format(request_lsn, lsn_text, sizeof(lsn_text)), cfg->slot,
            (unsigned long long)rows, cfg->table_schema, cfg->table_name, what, LSN_ARGS(done_lsn));
    fflush(cfg->out);
    if (!active)
        log_warn("no relay streams slot \"%s\" now; the request is served when one does",
                 cfg->slot);
    rc = cfg->wait ? wait_delivered(cfg, conn, done_lsn, rows) : REEMIT_EXIT_OK;
out:
    outbox_pg_close(conn);
    return rc;
}
