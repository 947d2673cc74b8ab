/*
 * The polling relay loop: one batch, one transaction. Rows are marked
 * published only after Kafka acknowledged every event of the batch, in the
 * transaction that locked them, so a crash, a broker outage or a lost
 * connection leaves them unpublished (sent again: at-least-once), never
 * marked and missing.
 */
#include "poll_relay.h"

#include "pace.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "notify.h"
#include "outbox.h"
#include "pgtime.h"
#include "poll_pg.h"
#include "poll_sql.h"
#include "shell.h"
#include "sink_ops.h"
#include "xmem.h"

enum batch_end {
    BATCH_DONE,   /* committed, or found nothing */
    BATCH_RETRY,  /* Postgres trouble: rolled back, reconnect */
    BATCH_REWIND, /* Kafka trouble: rolled back, new producer */
    BATCH_STOP,   /* stopped before the batch was acknowledged: rolled back */
    BATCH_FATAL,  /* logged; exit 1 */
};

struct poller {
    const struct relay_common_config *common;
    const struct relay_poll_config *cfg;
    struct poll_pg *pp;
    struct sink *sink;
    bool commit_ts; /* the server tracks commit timestamps */
    struct outbox_layout layout;
    uint8_t *scratch; /* bytea columns decoded into bytes */
    size_t scratch_cap;

    /* the batch in flight; reports of earlier batches carry an older number */
    uint64_t batch_no;
    int batch_acked;
    bool rewind;
    bool fatal;
    int64_t stop_deadline_us;

    /* observability only (docs/observability.md) */
    struct relay_stats stats;
    uint64_t published; /* rows marked published by a committed batch */
    uint64_t in_flight;
    bool pending_known;
    int64_t oldest_pending_us;
    int64_t last_server_us;
    int64_t next_publish_us;
    char err[1024];
};

/* Publishes the metrics snapshot (shell_publish_due's cadence). Changes
 * nothing the loop decides with. The LSN gauges stay 0: poll mode has no
 * WAL position. */
static void observe(struct poller *p, bool force)
{
    struct metrics_snapshot snap;

    if (!shell_publish_due(p->common->metrics, &p->next_publish_us, pace_monotonic_us(), force))
        return;
    shell_snapshot(&snap, &p->stats, p->common->server_timeout_ms, &sink_kafka_ops, p->sink);
    snap.events_in_flight = p->in_flight;
    snap.pending_known = p->pending_known && p->in_flight > 0;
    snap.oldest_pending_commit_us = p->oldest_pending_us;
    snap.streaming = poll_pg_ok(p->pp); /* "connected" in poll mode */
    snap.last_server_msg_us = p->last_server_us;
    metrics_board_publish(p->common->metrics, &snap);
}

static void on_delivery(void *arg, uint64_t seq, const char *err, bool permanent,
                        const char *event_id, const char *lsn_text)
{
    struct poller *p = arg;
    struct log_field fields[] = {{"event_id", event_id, -1}};

    (void)lsn_text; /* poll mode sends no lsn header */
    if (seq != p->batch_no)
        return; /* a batch already rolled back: its rows will be sent again */
    if (p->in_flight > 0)
        p->in_flight--;
    if (err == NULL) {
        p->batch_acked++;
        p->stats.delivered++;
        return;
    }
    p->stats.failed++;
    if (permanent) {
        log_write_fields(LOG_LEVEL_ERROR, fields, 1,
                         "delivery failed permanently, stopping without marking the batch "
                         "published: %s",
                         err);
        p->fatal = true;
    } else if (!p->rewind) {
        log_write_fields(LOG_LEVEL_WARN, fields, 1,
                         "delivery failed, rolling the batch back to send it again: %s", err);
        p->rewind = true;
    }
}

/* True once a stop request left no more time to finish the batch
 * (--shutdown-timeout from when it was first seen). */
static bool stop_deadline_passed(struct poller *p)
{
    int64_t now = pace_monotonic_us();

    return pace_stop_requested(&p->common->stop, p->common->shutdown_timeout_ms, now,
                               &p->stop_deadline_us) &&
           now >= p->stop_deadline_us;
}

/*
 * Waits for Kafka: while the producer queue is full (retry after), or until
 * every event of the batch is acknowledged. Returns BATCH_DONE to go on, or
 * why the batch must be abandoned.
 */
static enum batch_end wait_kafka(struct poller *p, int64_t deadline_us, int want_acked)
{
    char fatal[512];

    for (;;) {
        if (p->fatal)
            return BATCH_FATAL;
        if (sink_fatal(p->sink, fatal, sizeof(fatal))) {
            log_warn("producer hit a fatal error (%s); rolling the batch back, new producer",
                     fatal);
            return BATCH_REWIND;
        }
        if (p->rewind)
            return BATCH_REWIND;
        if (want_acked >= 0 && p->batch_acked >= want_acked)
            return BATCH_DONE;
        if (stop_deadline_passed(p)) {
            log_warn("stop requested and the batch is not acknowledged after %d ms; rolling it "
                     "back (its rows stay unpublished and are sent again by the next run)",
                     p->common->shutdown_timeout_ms);
            return BATCH_STOP;
        }
        if (pace_monotonic_us() >= deadline_us) {
            log_warn("batch not acknowledged by Kafka within %d ms (%d of %d events); rolling it "
                     "back so no transaction stays open, and producing it again with a new "
                     "producer",
                     p->cfg->batch_timeout_ms, p->batch_acked, want_acked);
            return BATCH_REWIND;
        }
        sink_poll(p->sink, 100);
        observe(p, false);
        if (want_acked < 0)
            return BATCH_DONE; /* queue wait: try the produce again */
    }
}

/* A row that cannot become an event stops the relay, as in stream mode. */
static enum batch_end bad_row(struct poller *p, const char *id, const char *why)
{
    log_write_fields(LOG_LEVEL_ERROR, (struct log_field[]){{"event_id", id, -1}}, 1,
                     "bad outbox row: %s; stopping without marking it published", why);
    poll_pg_rollback(p->pp);
    return BATCH_FATAL;
}

/* wait_kafka while the producer's queue is full, for shell_produce. */
struct queue_wait {
    struct poller *p;
    int64_t deadline_us;
    enum batch_end end;
};

static bool wait_for_queue(void *arg)
{
    struct queue_wait *qw = arg;

    qw->end = wait_kafka(qw->p, qw->deadline_us, -1);
    return qw->end == BATCH_DONE;
}

static enum batch_end run_batch(struct poller *p, int *nrows)
{
    const struct relay_poll_config *cfg = p->cfg;
    enum poll_pg_status st;
    enum batch_end end = BATCH_DONE;
    enum sink_status sst;
    struct queue_wait qw;
    int64_t deadline_us;
    const char **ids = NULL;
    int *id_lens = NULL;
    char *array = NULL;
    int n;

    st = poll_pg_fetch(p->pp, cfg->batch, &n, p->err, sizeof(p->err));
    *nrows = 0;
    if (st != POLL_PG_OK) {
        if (st == POLL_PG_EFATAL) {
            log_error("%s", p->err);
            return BATCH_FATAL;
        }
        log_warn("%s", p->err);
        return BATCH_RETRY;
    }
    p->last_server_us = pace_monotonic_us();
    if (n == 0) {
        poll_pg_rollback(p->pp); /* ends the empty transaction */
        return BATCH_DONE;
    }
    *nrows = n;
    p->batch_no++;
    p->batch_acked = 0;
    p->in_flight = 0;
    p->pending_known = false;
    deadline_us = pace_monotonic_us() + (int64_t)cfg->batch_timeout_ms * 1000;
    qw = (struct queue_wait){.p = p, .deadline_us = deadline_us};
    ids = xmalloc(sizeof(*ids) * (size_t)n);
    id_lens = xmalloc(sizeof(*id_lens) * (size_t)n);

    for (int i = 0; i < n; i++) {
        struct outbox_event ev = {0};
        struct pgout_str *dest[OUTBOX_NCOLS] = {&ev.id, &ev.aggregate_type, &ev.aggregate_id,
                                                &ev.event_type, &ev.payload};
        char topic[256], ts[OUTBOX_TS_LEN + 1] = "";
        struct sink_meta meta = {.lsn = NULL, .commit_ts = ts};
        const char *ts_text;
        size_t len, need;
        enum outbox_status ost;

        for (int c = 0; c < OUTBOX_NCOLS; c++) {
            dest[c]->ptr = poll_pg_value(p->pp, i, c, &len);
            dest[c]->len = len;
            if (dest[c]->ptr == NULL && c != OUTBOX_COL_PAYLOAD) {
                end = bad_row(p, c > 0 ? ev.id.ptr : "?", outbox_strerror(OUTBOX_ENULL));
                goto out;
            }
        }
        ev.traceparent.ptr = poll_pg_value(p->pp, i, POLL_SQL_COL_TRACEPARENT, &len);
        ev.traceparent.len = len;
        ev.nheaders = p->layout.nheaders;
        for (size_t h = 0; h < ev.nheaders; h++) {
            ev.headers[h].name = p->common->columns->headers[h].header;
            ev.headers[h].value.ptr = poll_pg_value(p->pp, i, POLL_SQL_COL_HEADERS + (int)h, &len);
            ev.headers[h].value.len = len;
        }
        need = outbox_event_decode_size(&p->layout, &ev);
        if (need > p->scratch_cap) {
            p->scratch = xrealloc(p->scratch, need);
            p->scratch_cap = need;
        }
        ost = outbox_event_decode(&p->layout, &ev, p->scratch, p->scratch_cap);
        if (ost != OUTBOX_OK) {
            end = bad_row(p, ev.id.ptr, outbox_strerror(ost));
            goto out;
        }
        ts_text = poll_pg_value(p->pp, i, POLL_SQL_COL_TS_US, &len);
        if (ts_text != NULL) {
            int64_t unix_us = strtoll(ts_text, NULL, 10);

            outbox_format_timestamp(pgtime_from_unix_us(unix_us), ts, sizeof(ts));
            if (!p->pending_known) {
                p->pending_known = true;
                p->oldest_pending_us = unix_us;
            }
        }
        ids[i] = ev.id.ptr;
        id_lens[i] = (int)ev.id.len;
        p->stats.received++;
        if (!outbox_topic(p->common->topic_template, &ev, topic, sizeof(topic))) {
            char why[512];

            shell_bad_topic(why, sizeof(why), &ev, p->common->topic_template);
            end = bad_row(p, ev.id.ptr, why);
            goto out;
        }
        sst = shell_produce(&sink_kafka_ops, p->sink, topic, &ev, &meta, NULL, p->batch_no,
                            wait_for_queue, &qw, p->err, sizeof(p->err));
        if (sst == SINK_QUEUE_FULL) {
            end = qw.end;
            goto abandon;
        }
        if (sst != SINK_OK) {
            p->stats.failed++;
            log_write_fields(LOG_LEVEL_ERROR, (struct log_field[]){{"event_id", ev.id.ptr, -1}}, 1,
                             "cannot produce event to topic %s: %s", topic, p->err);
            end = sst == SINK_EPERMANENT ? BATCH_FATAL : BATCH_REWIND;
            goto abandon;
        }
        p->stats.produced++;
        p->in_flight++;
    }
    if ((end = wait_kafka(p, deadline_us, n)) != BATCH_DONE)
        goto abandon;

    /* Every event is in Kafka: only now may the rows be marked. */
    array = poll_sql_array(ids, id_lens, (size_t)n);
    st = poll_pg_mark_commit(p->pp, array, n, p->err, sizeof(p->err));
    if (st != POLL_PG_OK) {
        log_warn("%s; the %d delivered events stay unpublished and will be sent again", p->err, n);
        end = st == POLL_PG_EFATAL ? BATCH_FATAL : BATCH_RETRY;
        goto out;
    }
    p->last_server_us = pace_monotonic_us();
    p->published += (uint64_t)n;
    p->pending_known = false;
    if (log_threshold >= LOG_LEVEL_DEBUG)
        log_debug("batch published rows=%d", n);
    goto out;
abandon:
    /* Nothing is marked: every row of the batch stays unpublished. */
    poll_pg_rollback(p->pp);
out:
    p->in_flight = 0;
    p->pending_known = false;
    free(array);
    free(ids);
    free(id_lens);
    return end;
}

enum relay_exit poll_relay_run(const struct relay_common_config *common,
                               const struct relay_poll_config *cfg)
{
    struct poller p = {.common = common, .cfg = cfg};
    enum relay_exit result = RELAY_EXIT_ERROR;
    int backoff_ms = 0;

    srandom((unsigned)pace_monotonic_us());
    observe(&p, true);
    while (!*common->stop.flag) {
        enum batch_end end;
        int n = 0;

        if (backoff_ms > 0) {
            log_info("retrying in %d ms", backoff_ms);
            pace_sleep_ms(backoff_ms, &common->stop);
            if (*common->stop.flag)
                break;
        }
        if (p.sink == NULL) {
            p.sink = sink_new(common->brokers, common->kafka_props, common->nkafka_props,
                              on_delivery, &p, p.err, sizeof(p.err));
            if (p.sink == NULL) {
                log_error("%s", p.err);
                goto out;
            }
        }
        if (p.pp == NULL) {
            enum poll_pg_status st;

            p.pp = poll_pg_open(common->database_url, common->table_schema, common->table_name,
                                common->columns, common->connect_timeout_s, common->stop.fd,
                                &p.commit_ts, &p.layout, &st, p.err, sizeof(p.err));
            if (p.pp == NULL) {
                if (st == POLL_PG_ESTOP)
                    break;
                if (st == POLL_PG_EFATAL) {
                    log_error("%s", p.err);
                    goto out;
                }
                log_warn("%s", p.err);
                p.stats.reconnects_pg++;
                backoff_ms = pace_backoff_next(backoff_ms, common->reconnect_max_ms);
                observe(&p, true);
                continue;
            }
            p.last_server_us = pace_monotonic_us();
            log_info("polling table %s.%s: batches of %d, every %d ms when idle; commit_ts from "
                     "%s%s%s",
                     common->table_schema, common->table_name, cfg->batch, cfg->interval_ms,
                     p.commit_ts ? "commit timestamps (track_commit_timestamp = on)"
                                 : common->columns->timestamp,
                     p.commit_ts ? "" : " (track_commit_timestamp = off)",
                     p.layout.traceparent >= 0 || common->columns->traceparent == NULL
                         ? ""
                         : "; no traceparent column: events carry no traceparent header");
            observe(&p, true);
            notify_ready("polling the outbox table"); /* systemd: READY=1 the first time */
        }

        end = run_batch(&p, &n);
        observe(&p, true);
        switch (end) {
        case BATCH_DONE:
            backoff_ms = 0;
            if (n == 0) {
                if (cfg->until_empty) {
                    log_info("outbox drained: no unpublished row left");
                    result = RELAY_EXIT_OK;
                    goto out;
                }
                pace_sleep_ms(cfg->interval_ms, &common->stop);
            }
            break;
        case BATCH_RETRY:
            poll_pg_close(p.pp);
            p.pp = NULL;
            p.stats.reconnects_pg++;
            backoff_ms = pace_backoff_next(backoff_ms, common->reconnect_max_ms);
            break;
        case BATCH_REWIND:
            /* The purged in-flight events may still have reached Kafka:
             * they are duplicates of the rows sent again, never gaps. */
            sink_free(p.sink);
            p.sink = NULL;
            p.rewind = false;
            p.stats.reconnects_kafka++;
            backoff_ms = pace_backoff_next(backoff_ms, common->reconnect_max_ms);
            break;
        case BATCH_STOP:
            result = RELAY_EXIT_OK;
            goto out;
        case BATCH_FATAL:
            goto out;
        }
    }
    result = RELAY_EXIT_OK;
out:
    log_info("relay stopped: %llu events produced, %llu delivered, %llu rows marked published",
             (unsigned long long)p.stats.produced, (unsigned long long)p.stats.delivered,
             (unsigned long long)p.published);
    poll_pg_close(p.pp);
    p.pp = NULL;
    observe(&p, true);
    sink_free(p.sink);
    free(p.scratch);
    return result;
}
