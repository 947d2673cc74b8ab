/*
 * The relay loop, in the shape of PostgreSQL's receivelog.c HandleCopyStream:
 * compute the next wake-up, drain every buffered CopyData message, serve
 * Kafka's delivery reports, recompute the confirmable position, answer the
 * server. The confirmed (flush) LSN only ever comes from tracker_safe_lsn,
 * which only moves on delivery reports (R1-R3); nothing here guesses.
 */
#include "pace.h"
#include "relay.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "be.h"
#include "catchup.h"
#include "eos.h"
#include "feedback.h"
#include "log.h"
#include "lsn.h"
#include "metrics.h"
#include "notify.h"
#include "outbox.h"
#include "outbox_message.h"
#include "pgout.h"
#include "reemit.h"
#include "reemit_serve.h"
#include "relcache.h"
#include "repl.h"
#include "state.h"
#include "tracker.h"
#include "xmem.h"

/* Messages handled before the loop serves reports and feedback again, so a
 * backlog cannot starve the status updates. */
#define RELAY_RECV_BUDGET  2048
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)
/* Samples of the delivered position kept for --replay-window. */
#define REPLAY_SAMPLES 4096
/* Metrics snapshots are published at most this often (and at stream edges). */
#define METRICS_PUBLISH_US 100000
/* Earlier walsenders of this process remembered (each reconnect adds one). */
#define RELAY_OWN_WALSENDERS 8
/* How long a slot held by a session that is not this process's may stay so
 * before the relay gives up (RELAY_EXIT_TEMPORARY): a killed relay's
 * walsender lingers until it notices the closed socket. */
#define RELAY_BUSY_GIVE_UP_US INT64_C(15000000)

enum stream_end {
    STREAM_STOP,   /* signal or --end-lsn: drain and exit 0 */
    STREAM_RETRY,  /* Postgres connection trouble: reconnect, keep the producer */
    STREAM_REWIND, /* Kafka trouble: new producer, restart from the safe LSN */
    STREAM_FATAL,  /* logged; exit 1 */
};

struct relay {
    const struct relay_config *cfg;
    struct tracker *tracker;
    struct relcache *relcache;
    struct sink *sink;
    struct repl_conn *rc;
    struct pgout_msg *msg;
    struct feedback_state fb;
    struct outbox_layout layout;
    bool have_layout;
    bool traceparent_told; /* the log said once whether the column is there */
    uint8_t *scratch;      /* bytea columns decoded into bytes */
    size_t scratch_cap;

    /* the transaction being received */
    bool in_txn;
    bool skip_txn;
    uint64_t txn_seq;
    uint64_t txn_commit_lsn;
    char txn_lsn[LSN_STR_MAX];
    char txn_ts[OUTBOX_TS_LEN + 1];

    uint64_t write_lsn;       /* furthest position received */
    uint64_t pending_wal_end; /* keepalive position waiting for the tracker to go idle */
    int64_t last_server_msg_us;
    bool probe_sent;
    bool end_reached;
    int64_t stop_deadline_us; /* set when a stop request is first seen */
    int64_t reply_burst_start_us;
    struct repl_heartbeat *heartbeat;
    int64_t next_heartbeat_us;
    const struct repl_opts *opts;
    int reply_burst;
    char systemid[32];

    /* Highest position received before a publication check that passed
     * (publication_verified); the confirmed position never passes it. */
    uint64_t pub_verified_lsn;
    int64_t pub_checked_us;

    /* --state-file: the last delivered position written durably */
    uint64_t saved_lsn;

    /* --replay-window: (time, delivered position) samples, oldest first */
    struct {
        int64_t at_us;
        uint64_t lsn;
    } samples[REPLAY_SAMPLES];
    size_t nsamples;
    uint64_t held_lsn; /* what the server is allowed to forget up to */

    /* set from delivery reports */
    bool rewind;
    bool fatal;

    /* --exactly-once; NULL otherwise. Every use goes through the eos_*
     * hooks below (the seam), so the default path is unchanged. */
    struct eos *eos;
    uint64_t eos_checkpoint; /* read at the last eos_attach */
    bool fenced;

    /* Test-only (tests/faults): CDC_TEST_FAILPOINT=after-delivery-before-status
     * makes the first successful delivery report _exit(70), so Kafka has the
     * event and neither the state file nor Postgres has heard of it. */
    bool failpoint_after_delivery;

    /* Walsenders of the replication connections this process opened, newest
     * last (a ring): one still holding the slot after a reconnect is this
     * relay's own, and is ended rather than waited for. */
    struct repl_walsender own[RELAY_OWN_WALSENDERS];
    size_t nown;
    /* The slot was created by this run's first connection and not streamed
     * from yet: a refused start drops it again. */
    bool slot_created_unused;

    uint64_t produced;
    uint64_t delivered;

    /* observability only (docs/observability.md): nothing here feeds a
     * decision of the loop */
    uint64_t received;         /* events decoded in transactions being relayed */
    uint64_t failed;           /* failed delivery reports and refused produces */
    uint64_t dead_lettered;    /* dead-letter copies acknowledged */
    uint64_t reconnects_pg;    /* streams left for Postgres trouble */
    uint64_t reconnects_kafka; /* rewinds */
    uint64_t confirmed_lsn;    /* flush of the last status update sent (or the slot's) */
    uint64_t server_wal_end;   /* IDENTIFY_SYSTEM xlogpos, then keepalive walEnd */
    uint64_t stream_start_lsn;
    int64_t xlog_sent_us; /* send time in the header of the XLogData being handled */
    struct prom_hist latency[LATENCY_STAGES];
    bool streaming;
    int64_t next_publish_us;
    struct catchup catchup;
    char err[1024];
};

/* Logs a delivery report with the event's lsn and id headers as fields. */
static void log_report(enum log_level level, const char *lsn_text, const char *event_id,
                       const char *what, const char *err)
{
    struct log_field fields[] = {{"lsn", lsn_text, -1}, {"event_id", event_id, -1}};

    if (err != NULL)
        log_write_fields(level, fields, 2, "%s: %s", what, err);
    else
        log_write_fields(level, fields, 2, "%s", what);
}

/* Counts a transaction whose every event Kafka has acknowledged in the stage
 * histograms, once. Left out: transactions abandoned before their Commit
 * (never handed over whole), anything reported after a failed delivery (the
 * relay rewinds and sends it again), and --exactly-once batches (delivered
 * only when the Kafka transaction commits, which their reports precede). */
static void observe_if_delivered(struct relay *r, uint64_t seq)
{
    const struct latency_times *times;

    if (r->eos != NULL || tracker_failed(r->tracker) || !tracker_txn_delivered(r->tracker, seq))
        return;
    times = tracker_times(r->tracker, seq);
    if (times->produced_us != 0)
        latency_observe(r->latency, times, pace_now_us());
}

static void on_delivery(void *arg, uint64_t seq, const char *err, bool permanent,
                        const char *event_id, const char *lsn_text)
{
    struct relay *r = arg;

    if (!tracker_ack(r->tracker, seq, err == NULL)) {
        /* A report for nothing in flight means the books are wrong; only a
         * rewind makes them right again. */
        log_report(LOG_LEVEL_ERROR, lsn_text, event_id,
                   "delivery report for unknown transaction; rewinding", NULL);
        r->rewind = true;
        return;
    }
    if (err == NULL) {
        r->delivered++;
        if (r->failpoint_after_delivery)
            _exit(70);
        observe_if_delivered(r, seq);
        return;
    }
    r->failed++;
    if (permanent) {
        /* With a dead-letter topic the sink redirects every permanent
         * failure, so one that arrives here is the copy's own: stop. */
        log_report(LOG_LEVEL_ERROR, lsn_text, event_id,
                   r->cfg->dead_letter_topic != NULL
                       ? "dead-letter delivery failed permanently, stopping without confirming it"
                       : "delivery failed permanently, stopping without confirming it",
                   err);
        r->fatal = true;
    } else {
        log_report(LOG_LEVEL_WARN, lsn_text, event_id,
                   "delivery failed, rewinding to the last delivered position", err);
        r->rewind = true;
    }
}

/* The sink redirected a failed event (err set) or the dead-letter topic
 * acknowledged its copy (err NULL; on_delivery follows and counts it). */
static void on_dead_letter(void *arg, uint64_t seq, const char *err, const char *event_id,
                           const char *lsn_text)
{
    struct relay *r = arg;

    (void)seq;
    if (err != NULL) {
        log_report(LOG_LEVEL_WARN, lsn_text, event_id,
                   "delivery failed permanently, sending the event to the dead-letter topic", err);
        return;
    }
    r->dead_lettered++;
    log_report(LOG_LEVEL_INFO, lsn_text, event_id, "dead-letter topic acknowledged the event",
               NULL);
}

/*
 * --replay-window: the position the server may forget up to is the newest
 * delivered position at least the window old, so the last window of WAL
 * stays in the slot for a replay (--start-lsn). Samples are taken at most
 * every window/REPLAY_SAMPLES (and at least 1 s) apart.
 */
static uint64_t replay_window_hold(struct relay *r, uint64_t delivered, int64_t now)
{
    int64_t window_us = r->cfg->replay_window_s * 1000000;
    int64_t spacing = window_us / REPLAY_SAMPLES;
    size_t keep = 0;

    if (spacing < 1000000)
        spacing = 1000000;
    if (r->nsamples == 0 || (r->samples[r->nsamples - 1].lsn != delivered &&
                             now - r->samples[r->nsamples - 1].at_us >= spacing)) {
        if (r->nsamples == REPLAY_SAMPLES) {
            memmove(&r->samples[0], &r->samples[1], sizeof(r->samples[0]) * (REPLAY_SAMPLES - 1));
            r->nsamples--;
        }
        r->samples[r->nsamples].at_us = now;
        r->samples[r->nsamples].lsn = delivered;
        r->nsamples++;
    }
    while (keep < r->nsamples && r->samples[keep].at_us <= now - window_us)
        keep++;
    if (keep > 0) {
        /* samples[keep-1] is the newest old enough; older ones are done. */
        r->held_lsn = r->samples[keep - 1].lsn;
        memmove(&r->samples[0], &r->samples[keep - 1],
                sizeof(r->samples[0]) * (r->nsamples - keep + 1));
        r->nsamples -= keep - 1;
    }
    return r->held_lsn;
}

/* Returns false when the connection failed or the position could not be
 * saved (both logged; the latter also marks the relay fatal). */
static bool send_status(struct relay *r, bool reply_requested)
{
    uint64_t delivered = tracker_safe_lsn(r->tracker);
    uint64_t flush = delivered;
    int64_t now = pace_now_us();
    uint64_t write;

    /* R9: the saved position is on disk before the server may forget it. */
    if (r->cfg->state_file != NULL && delivered > r->saved_lsn) {
        struct relay_state st = {.lsn = delivered};

        snprintf(st.slot, sizeof(st.slot), "%s", r->cfg->slot);
        snprintf(st.systemid, sizeof(st.systemid), "%s", r->systemid);
        if (state_save(r->cfg->state_file, &st, r->err, sizeof(r->err)) != 0) {
            log_error("%s; stopping so that nothing is confirmed unsaved", r->err);
            r->fatal = true;
            return false;
        }
        r->saved_lsn = delivered;
    }
    if (r->cfg->replay_window_s > 0)
        flush = replay_window_hold(r, delivered, pace_monotonic_us());
    if (flush > r->pub_verified_lsn)
        flush = r->pub_verified_lsn;
    write = r->write_lsn > delivered ? r->write_lsn : delivered;
    /* apply is the delivered position, held back by nothing: what
     * `cdc-relay reemit --wait` reads (pg_stat_replication.replay_lsn). */
    if (repl_send_status(r->rc, write, flush, delivered, now - PG_EPOCH_OFFSET_US, reply_requested,
                         r->err, sizeof(r->err)) != REPL_OK) {
        log_warn("%s", r->err);
        return false;
    }
    log_debug("status update write=" LSN_FMT " flush=" LSN_FMT " delivered=" LSN_FMT,
              LSN_ARGS(write), LSN_ARGS(flush), LSN_ARGS(delivered));
    feedback_sent(&r->fb, delivered, pace_monotonic_us());
    r->confirmed_lsn = flush;
    return true;
}

static void log_catchup(enum catchup_event ev, const struct catchup_report *rep, uint64_t received,
                        uint64_t server)
{
    char behind[32], rate[32], eta[32];
    struct log_field fields[] = {
        {"behind_bytes", behind, -1}, {"events_per_s", rate, -1}, {"eta_s", eta, -1}};
    double mib = (double)rep->behind_bytes / (1024.0 * 1024.0);

    snprintf(behind, sizeof(behind), "%llu", (unsigned long long)rep->behind_bytes);
    snprintf(rate, sizeof(rate), "%.0f", rep->events_per_s);
    snprintf(eta, sizeof(eta), "%.0f", rep->eta_s);
    switch (ev) {
    case CATCHUP_STARTED:
        log_write_fields(LOG_LEVEL_INFO, fields, 1,
                         "catch-up: %.1f MiB of WAL behind (received " LSN_FMT
                         ", server WAL end " LSN_FMT "); progress every %d s",
                         mib, LSN_ARGS(received), LSN_ARGS(server),
                         (int)(CATCHUP_INTERVAL_US / 1000000));
        break;
    case CATCHUP_PROGRESS:
        if (rep->eta_s < 0) {
            fields[2].value = NULL;
            log_write_fields(LOG_LEVEL_INFO, fields, 3,
                             "catch-up: %.0f events/s, %.1f MiB of WAL behind, ETA unknown",
                             rep->events_per_s, mib);
        } else {
            log_write_fields(LOG_LEVEL_INFO, fields, 3,
                             "catch-up: %.0f events/s, %.1f MiB of WAL behind, ETA %.0fs",
                             rep->events_per_s, mib, rep->eta_s);
        }
        break;
    case CATCHUP_DONE:
        log_info("catch-up: done, %llu events in %.0fs; caught up at " LSN_FMT,
                 (unsigned long long)rep->events, rep->elapsed_s, LSN_ARGS(received));
        break;
    case CATCHUP_NONE:
        break;
    }
}

/* systemd (Type=notify): the relay can do its work once it streams; READY=1
 * the first time, the status every time. */
static void notify_ready_streaming(const struct relay_config *cfg)
{
    char status[256];

    snprintf(status, sizeof(status), "streaming slot %s", cfg->slot);
    notify_ready(status);
}

/*
 * Observation only: reports catch-up progress and publishes the metrics
 * snapshot (at most every METRICS_PUBLISH_US unless forced). Reads the
 * relay's state; changes nothing the loop decides with.
 */
static void observe(struct relay *r, bool force)
{
    int64_t now = pace_monotonic_us();
    uint64_t received = r->write_lsn > r->stream_start_lsn ? r->write_lsn : r->stream_start_lsn;
    struct catchup_report rep;
    struct metrics_snapshot snap;

    if (r->streaming) {
        enum catchup_event ev =
            catchup_update(&r->catchup, now, received, r->server_wal_end, r->received, &rep);
        log_catchup(ev, &rep, received, r->server_wal_end);
    }
    if (r->cfg->metrics == NULL || (!force && now < r->next_publish_us))
        return;
    r->next_publish_us = now + METRICS_PUBLISH_US;
    memset(&snap, 0, sizeof(snap));
    snap.events_received = r->received;
    snap.events_produced = r->produced;
    snap.events_delivered = r->delivered;
    snap.events_failed = r->failed;
    snap.events_dead_lettered = r->dead_lettered;
    snap.reconnects_postgres = r->reconnects_pg;
    snap.reconnects_kafka = r->reconnects_kafka;
    snap.events_in_flight = tracker_inflight_events(r->tracker);
    snap.received_lsn = received;
    snap.delivered_lsn = tracker_safe_lsn(r->tracker);
    snap.confirmed_lsn = r->confirmed_lsn;
    /* the server has at least what it sent */
    snap.server_wal_end_lsn = r->server_wal_end > received ? r->server_wal_end : received;
    snap.pending_known = tracker_oldest_pending_time(r->tracker, &snap.oldest_pending_commit_us);
    snap.streaming = r->streaming;
    snap.catching_up = r->catchup.active;
    snap.last_server_msg_us = r->last_server_msg_us;
    snap.server_timeout_ms = r->cfg->server_timeout_ms;
    snap.have_kafka = r->sink != NULL;
    if (r->sink != NULL)
        sink_stats(r->sink, &snap.kafka);
    memcpy(snap.latency, r->latency, sizeof(snap.latency));
    metrics_board_publish(r->cfg->metrics, &snap);
}

/*
 * A stop request is honoured between transactions, so a clean stop never
 * leaves half a transaction produced (the server would re-send it whole, as
 * duplicates); inside one the relay reads on to its Commit, for at most
 * --shutdown-timeout.
 */
static bool should_stop(struct relay *r)
{
    if (!*r->cfg->stop)
        return false;
    if (r->stop_deadline_us == 0)
        r->stop_deadline_us = pace_monotonic_us() + (int64_t)r->cfg->shutdown_timeout_ms * 1000;
    return !r->in_txn || pace_monotonic_us() >= r->stop_deadline_us;
}

/* Keeps the walsender content while the relay is not reading the stream
 * (R4: the producer's queue is full; a re-emit reads the table): serves
 * delivery reports, waiting up to poll_ms for one, and keeps sending status
 * updates. Returns true to go on, false to leave the stream (*end set). */
static bool keep_stream_alive(struct relay *r, int poll_ms, enum stream_end *end)
{
    sink_poll(r->sink, poll_ms);
    /* The relay is not reading, so the server's silence means nothing. */
    r->last_server_msg_us = pace_monotonic_us();
    r->probe_sent = false;
    observe(r, false);
    if (should_stop(r)) {
        *end = STREAM_STOP;
        return false;
    }
    if (r->fatal || r->rewind) {
        *end = r->fatal ? STREAM_FATAL : STREAM_REWIND;
        return false;
    }
    if (feedback_due(&r->fb, tracker_safe_lsn(r->tracker), pace_monotonic_us()) &&
        !send_status(r, false)) {
        *end = STREAM_RETRY;
        return false;
    }
    return true;
}

static bool wait_for_queue(struct relay *r, enum stream_end *end)
{
    return keep_stream_alive(r, 100, end);
}

/* ---- --exactly-once hooks (eos.h); each is a no-op without it ---------- */

static enum stream_end eos_end(struct relay *r, enum eos_result res)
{
    switch (res) {
    case EOS_OK:
        return STREAM_STOP;
    case EOS_FENCED:
        log_error("%s: another cdc-relay with the same transactional.id has taken over "
                  "(fenced); exiting without confirming anything more",
                  r->err);
        r->fenced = true;
        return STREAM_FATAL;
    case EOS_FATAL:
        log_error("%s", r->err);
        return STREAM_FATAL;
    case EOS_RETRY:
    case EOS_REWIND:
        break;
    }
    log_warn("%s; aborting the Kafka transaction and rewinding to the last checkpoint", r->err);
    return STREAM_REWIND;
}

/* Called between commit steps: the walsender must keep hearing from us. */
static void eos_commit_wait(void *arg)
{
    struct relay *r = arg;

    sink_poll(r->sink, 0);
    r->last_server_msg_us = pace_monotonic_us();
    if (feedback_due(&r->fb, tracker_safe_lsn(r->tracker), pace_monotonic_us()))
        (void)send_status(r, false); /* a lost connection shows on the next receive */
}

/* Between source transactions: commits the open batch when it is due (or
 * when force). Returns false with *end set when the stream must end. */
static bool eos_close(struct relay *r, bool force, enum stream_end *end)
{
    enum eos_result res;

    if (r->eos == NULL || r->in_txn || !eos_open(r->eos) ||
        (!force && !eos_due(r->eos, pace_monotonic_us())))
        return true;
    res = eos_commit(r->eos, r->tracker, tracker_last_end_lsn(r->tracker), eos_commit_wait, r,
                     r->err, sizeof(r->err));
    if (res == EOS_OK)
        return true;
    *end = eos_end(r, res);
    return false;
}

/* How a stream's end looks with a Kafka transaction open: a clean stop
 * commits the whole source transactions it holds; anything else, or a stop
 * inside a source transaction, aborts it (those transactions are received
 * again), and a Postgres reconnect becomes a rewind because the aborted
 * events must be produced again. */
static enum stream_end eos_stream_end(struct relay *r, enum stream_end end)
{
    char fatal[512];

    if (r->eos == NULL)
        return end;
    /* A produce refused for a fatal error asks for a rewind; here a new
     * producer would fence the relay that fenced this one. */
    if (end == STREAM_REWIND && r->sink != NULL && sink_fatal(r->sink, fatal, sizeof(fatal))) {
        snprintf(r->err, sizeof(r->err), "producer hit a fatal error (%s)", fatal);
        end = eos_end(r, sink_fenced(r->sink) ? EOS_FENCED : EOS_FATAL);
    }
    if (!eos_open(r->eos))
        return end;
    if (end == STREAM_STOP && !r->in_txn && eos_close(r, true, &end))
        return STREAM_STOP;
    eos_abort(r->eos);
    return end == STREAM_RETRY ? STREAM_REWIND : end;
}

static bool produce_event(struct relay *r, const struct outbox_event *evp,
                          const struct sink_meta *meta, enum stream_end *end);

/*
 * Sends an event that can never become its own message to the
 * dead-letter topic, under the transaction's seq so that its acknowledgement
 * is the event's delivery (the position does not pass it before). why is
 * copied. Returns false (end set, logged) when even that is impossible.
 */
static bool dead_letter(struct relay *r, const struct outbox_event *ev,
                        const struct sink_meta *meta, const char *topic, const char *why,
                        bool drop_value, enum stream_end *end)
{
    struct sink_meta txn_meta = {.lsn = r->txn_lsn, .commit_ts = r->txn_ts};
    char reason[512];
    struct sink_dead_letter dl = {
        .original_topic = topic, .error = reason, .drop_value = drop_value};

    snprintf(reason, sizeof(reason), "%s", why);
    log_event(LOG_LEVEL_WARN, r->txn_commit_lsn, ev->id.ptr ? ev->id.ptr : "?",
              ev->id.ptr ? (int)ev->id.len : -1, "sending event to dead-letter topic %s: %s",
              r->cfg->dead_letter_topic, reason);
    for (;;) {
        enum sink_status st = sink_produce_dead_letter(r->sink, ev, meta != NULL ? meta : &txn_meta,
                                                       &dl, r->txn_seq, r->err, sizeof(r->err));

        if (st == SINK_OK)
            break;
        if (st == SINK_QUEUE_FULL) {
            if (!wait_for_queue(r, end))
                return false;
            continue;
        }
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, ev->id.ptr ? ev->id.ptr : "?",
                  ev->id.ptr ? (int)ev->id.len : -1,
                  "cannot send event to the dead-letter topic: %s; stopping without confirming it",
                  r->err);
        *end = st == SINK_EFATAL ? STREAM_REWIND : STREAM_FATAL;
        return false;
    }
    tracker_add_event(r->tracker, r->txn_seq);
    r->produced++;
    return true;
}

static bool handle_insert(struct relay *r, enum stream_end *end)
{
    const struct pgout_msg *m = r->msg;
    struct outbox_event ev;
    enum outbox_status ost;

    memset(&ev, 0, sizeof(ev)); /* the error path below may log a field never set */
    if (relcache_get(r->relcache, m->u.insert.relid) == NULL) {
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, NULL, -1,
                  "protocol error: insert for relation %u before its Relation message",
                  m->u.insert.relid);
        *end = STREAM_FATAL;
        return false;
    }
    if (!r->have_layout || m->u.insert.relid != r->layout.relid || r->skip_txn)
        return true;
    if (!r->in_txn) {
        log_error("protocol error: insert outside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    ost = outbox_event_from_tuple(&r->layout, &m->u.insert.newtup, &ev);
    if (ost == OUTBOX_OK) {
        size_t need = outbox_event_decode_size(&r->layout, &ev);

        if (need > r->scratch_cap) {
            r->scratch = xrealloc(r->scratch, need);
            r->scratch_cap = need;
        }
        ost = outbox_event_decode(&r->layout, &ev, r->scratch, r->scratch_cap);
    }
    if (ost == OUTBOX_ENULL && r->cfg->dead_letter_topic != NULL) {
        char why[160];

        r->received++;
        snprintf(why, sizeof(why), "bad outbox row: %s", outbox_strerror(ost));
        return dead_letter(r, &ev, NULL, NULL, why, false, end);
    }
    if (ost != OUTBOX_OK) {
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, ev.id.ptr ? ev.id.ptr : "?",
                  ev.id.ptr ? (int)ev.id.len : -1,
                  "bad outbox row: %s; stopping without confirming it", outbox_strerror(ost));
        *end = STREAM_FATAL;
        return false;
    }
    return produce_event(r, &ev, NULL, end);
}

/* Message mode: a transactional pg_logical_emit_message with the outbox
 * prefix is one event, committed with the transaction around it. */
static bool handle_outbox_message(struct relay *r, enum stream_end *end)
{
    const struct pgout_msg *m = r->msg;
    struct outbox_message om;
    const char *why = NULL;
    bool ok;

    if (!(m->u.message.flags & 1)) {
        log_event(LOG_LEVEL_WARN, m->u.message.lsn, NULL, -1,
                  "non-transactional message with prefix \"%s\" ignored: an outbox event must "
                  "be emitted with pg_logical_emit_message(true, ...) so it commits with its "
                  "transaction",
                  r->cfg->message_prefix);
        return true;
    }
    if (!r->in_txn) {
        log_error("protocol error: transactional message outside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    if (r->skip_txn)
        return true;
    if (!outbox_message_parse(m->u.message.content, m->u.message.len, &om, &why)) {
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, NULL, -1,
                  "bad outbox message: %s; stopping without confirming it", why);
        *end = STREAM_FATAL;
        return false;
    }
    ok = produce_event(r, &om.ev, NULL, end);
    outbox_message_free(&om);
    return ok;
}

/* Routes and produces one event of the open transaction, waiting while the
 * producer's queue is full. meta NULL: the transaction's lsn and commit_ts. */
static bool produce_event(struct relay *r, const struct outbox_event *evp,
                          const struct sink_meta *metap, enum stream_end *end)
{
    const struct outbox_event ev = *evp;
    char topic[256];
    struct sink_meta meta = {.lsn = r->txn_lsn, .commit_ts = r->txn_ts};

    if (metap != NULL)
        meta = *metap;

    r->received++;
    memset(topic, 0, sizeof(topic)); /* a name too long is left unterminated */
    if (!outbox_topic(r->cfg->topic_template, &ev, topic, sizeof(topic))) {
        if (r->cfg->dead_letter_topic != NULL) {
            char why[512];

            snprintf(why, sizeof(why),
                     "aggregate_type '%.*s' does not make a valid Kafka topic name from "
                     "template '%s'",
                     (int)ev.aggregate_type.len, ev.aggregate_type.ptr, r->cfg->topic_template);
            topic[sizeof(topic) - 1] = '\0';
            return dead_letter(r, &ev, &meta, topic, why, false, end);
        }
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, ev.id.ptr, (int)ev.id.len,
                  "outbox event: aggregate_type '%.*s' does not make a valid Kafka topic name "
                  "from template '%s'; stopping without confirming it",
                  (int)ev.aggregate_type.len, ev.aggregate_type.ptr, r->cfg->topic_template);
        *end = STREAM_FATAL;
        return false;
    }
    if (r->eos != NULL) {
        enum eos_result res = eos_before_produce(r->eos, r->tracker, r->txn_seq,
                                                 pace_monotonic_us(), r->err, sizeof(r->err));
        if (res != EOS_OK) {
            *end = eos_end(r, res);
            return false;
        }
    }
    for (;;) {
        enum sink_status st =
            sink_produce(r->sink, topic, &ev, &meta, r->txn_seq, r->err, sizeof(r->err));

        if (st == SINK_OK)
            break;
        if (st == SINK_QUEUE_FULL) {
            if (!wait_for_queue(r, end))
                return false;
            continue;
        }
        if ((st == SINK_EPERMANENT || st == SINK_ETOOLARGE) && r->cfg->dead_letter_topic != NULL) {
            char why[512];

            snprintf(why, sizeof(why), "cannot produce event to topic %.255s: %.200s", topic,
                     r->err);
            return dead_letter(r, &ev, &meta, topic, why, st == SINK_ETOOLARGE, end);
        }
        r->failed++;
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, ev.id.ptr, (int)ev.id.len,
                  "cannot produce event to topic %.255s: %.200s", topic, r->err);
        *end = st == SINK_EFATAL ? STREAM_REWIND : STREAM_FATAL;
        return false;
    }
    tracker_add_event(r->tracker, r->txn_seq);
    r->produced++;
    if (log_threshold >= LOG_LEVEL_DEBUG)
        log_event(LOG_LEVEL_DEBUG, r->txn_commit_lsn, ev.id.ptr, (int)ev.id.len,
                  "event produced topic=%s", topic);
    return true;
}

static bool handle_relation(struct relay *r, enum stream_end *end)
{
    const struct relcache_rel *rel = relcache_put(r->relcache, r->msg);
    const char *missing = NULL;

    if (strcmp(rel->nspname, r->cfg->table_schema) != 0 ||
        strcmp(rel->relname, r->cfg->table_name) != 0) {
        if (r->have_layout && rel->relid == r->layout.relid)
            r->have_layout = false; /* renamed away from the outbox name */
        return true;
    }
    if (outbox_layout_init(&r->layout, r->cfg->columns, rel, &missing) != OUTBOX_OK) {
        const struct outbox_columns *c = r->cfg->columns;

        log_error("table %s.%s has no column \"%s\"; the outbox needs the columns %s, %s, %s, "
                  "%s and %s (--id-column, --route-column, --key-column, --type-column, "
                  "--payload-column), and every --header-columns one",
                  rel->nspname, rel->relname, missing, c->role[OUTBOX_COL_ID],
                  c->role[OUTBOX_COL_AGGREGATE_TYPE], c->role[OUTBOX_COL_AGGREGATE_ID],
                  c->role[OUTBOX_COL_EVENT_TYPE], c->role[OUTBOX_COL_PAYLOAD]);
        *end = STREAM_FATAL;
        return false;
    }
    if (!r->traceparent_told && r->cfg->columns->traceparent != NULL) {
        if (r->layout.traceparent >= 0)
            log_info("trace context: column \"%s\" of %s.%s becomes the traceparent header",
                     r->cfg->columns->traceparent, rel->nspname, rel->relname);
        else
            log_info("trace context: table %s.%s has no column \"%s\"; events carry no "
                     "traceparent header (sql/0005_outbox_traceparent.sql adds it)",
                     rel->nspname, rel->relname, r->cfg->columns->traceparent);
        r->traceparent_told = true;
    }
    r->have_layout = true;
    return true;
}

static bool handle_begin(struct relay *r, enum stream_end *end)
{
    const struct pgout_msg *m = r->msg;
    uint64_t final_lsn = m->u.begin.final_lsn;

    if (r->in_txn) {
        log_event(LOG_LEVEL_ERROR, final_lsn, NULL, -1,
                  "protocol error: Begin inside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    if (r->cfg->end_lsn != 0 && final_lsn > r->cfg->end_lsn) {
        log_info("reached end position " LSN_FMT ": next transaction commits at " LSN_FMT,
                 LSN_ARGS(r->cfg->end_lsn), LSN_ARGS(final_lsn));
        r->end_reached = true;
        *end = STREAM_STOP;
        return false;
    }
    r->in_txn = true;
    r->txn_commit_lsn = final_lsn;
    r->pending_wal_end = 0; /* this transaction's commit will supersede it */
    /* A transaction that commits before what was already produced is a
     * re-sent copy (reconnect, or a slot that moved back after a server
     * crash); one before --start-lsn was excluded by the operator. */
    r->skip_txn = final_lsn < tracker_last_end_lsn(r->tracker) ||
                  (r->cfg->start_lsn != 0 && final_lsn < r->cfg->start_lsn);
    if (r->skip_txn) {
        if (log_threshold >= LOG_LEVEL_DEBUG)
            log_event(LOG_LEVEL_DEBUG, final_lsn, NULL, -1, "skipping transaction");
        return true;
    }
    r->txn_seq = tracker_begin(r->tracker);
    *tracker_times(r->tracker, r->txn_seq) = (struct latency_times){
        .commit_us = m->u.begin.commit_time + PG_EPOCH_OFFSET_US,
        .sent_us = r->xlog_sent_us,
        .received_us = pace_now_us(),
    };
    lsn_format(final_lsn, r->txn_lsn, sizeof(r->txn_lsn));
    outbox_format_timestamp(m->u.begin.commit_time, r->txn_ts, sizeof(r->txn_ts));
    return true;
}

static bool handle_commit(struct relay *r, enum stream_end *end)
{
    const struct pgout_msg *m = r->msg;

    if (!r->in_txn || m->u.commit.commit_lsn != r->txn_commit_lsn) {
        log_event(LOG_LEVEL_ERROR, m->u.commit.commit_lsn, NULL, -1,
                  "protocol error: Commit does not match Begin at " LSN_FMT,
                  LSN_ARGS(r->txn_commit_lsn));
        *end = STREAM_FATAL;
        return false;
    }
    r->in_txn = false;
    if (m->u.commit.end_lsn > r->write_lsn)
        r->write_lsn = m->u.commit.end_lsn;
    if (r->skip_txn)
        return true;
    if (!tracker_commit(r->tracker, r->txn_seq, m->u.commit.end_lsn)) {
        log_event(LOG_LEVEL_ERROR, r->txn_commit_lsn, NULL, -1,
                  "protocol error: commit end " LSN_FMT " is not after the previous one",
                  LSN_ARGS(m->u.commit.end_lsn));
        *end = STREAM_FATAL;
        return false;
    }
    tracker_times(r->tracker, r->txn_seq)->produced_us = pace_now_us();
    observe_if_delivered(r, r->txn_seq); /* its reports may all be in already */
    if (!eos_close(r, false, end))
        return false;
    if (should_stop(r)) {
        *end = STREAM_STOP;
        return false;
    }
    return true;
}

/* ---- re-emit requests (cdc/reemit_serve.h) ------------------------------ */

static enum stream_end check_kafka(struct relay *r);

#define REEMIT_BATCH_ROWS 1000

struct reemit_ctx {
    struct relay *r;
    enum stream_end end;
    char request[LSN_STR_MAX];
};

static bool reemit_emit(void *arg, const struct outbox_event *ev, const char *commit_ts)
{
    struct reemit_ctx *x = arg;
    struct sink_meta meta = {
        .commit_ts = commit_ts != NULL ? commit_ts : x->r->txn_ts,
        .replay_request = x->request,
    };

    return produce_event(x->r, ev, &meta, &x->end);
}

static bool reemit_idle(void *arg)
{
    struct reemit_ctx *x = arg;

    if (!keep_stream_alive(x->r, 0, &x->end))
        return false;
    return (x->end = check_kafka(x->r)) == STREAM_STOP;
}

/*
 * A re-emit request for this relay's slot, decoded at its place in the
 * stream: its rows are produced now, in the request's transaction, before
 * anything committed after it is read (per-key order), and that
 * transaction's position waits for every one of their acknowledgements.
 */
static bool handle_reemit_request(struct relay *r, enum stream_end *end)
{
    const struct pgout_msg *m = r->msg;
    struct reemit_ctx x = {.r = r, .end = STREAM_STOP};
    struct reemit_source src = {
        .database_url = r->cfg->database_url,
        .connect_timeout_s = r->cfg->connect_timeout_s,
        .table_schema = r->cfg->table_schema,
        .table_name = r->cfg->table_name,
        .columns = r->cfg->columns,
        .batch_rows = REEMIT_BATCH_ROWS,
    };
    struct reemit_hooks hooks = {.emit = reemit_emit, .idle = reemit_idle, .arg = &x};
    struct reemit_request req;
    const char *why = NULL;
    uint64_t sent, skipped;
    enum reemit_result res;
    int64_t t0;
    double secs;

    if (!(m->u.message.flags & 1) || r->skip_txn)
        return true; /* not from cdc-relay reemit, or served before this reconnect */
    if (!r->in_txn) {
        log_error("protocol error: transactional message outside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    if (!reemit_request_parse(m->u.message.content, m->u.message.len, &req, &why)) {
        log_event(LOG_LEVEL_WARN, m->u.message.lsn, NULL, -1, "ignoring a bad re-emit request: %s",
                  why);
        return true;
    }
    lsn_format(m->u.message.lsn, x.request, sizeof(x.request));
    if (strcmp(req.slot, r->cfg->slot) != 0) {
        log_event(LOG_LEVEL_INFO, m->u.message.lsn, NULL, -1,
                  "re-emit request %s is for slot \"%s\", not this relay's", x.request, req.slot);
        reemit_request_free(&req);
        return true;
    }
    if (req.kind == REEMIT_IDS)
        log_event(LOG_LEVEL_INFO, m->u.message.lsn, NULL, -1,
                  "re-emit request %s: ids %s..%s of %s.%s", x.request, req.first_id, req.last_id,
                  src.table_schema, src.table_name);
    else
        log_event(LOG_LEVEL_INFO, m->u.message.lsn, NULL, -1,
                  "re-emit request %s: rows of %s.%s from %lld to %lld (Unix us)", x.request,
                  src.table_schema, src.table_name, (long long)req.since_us,
                  (long long)req.until_us);
    t0 = pace_monotonic_us();
    res = reemit_serve(&src, &req, &hooks, &sent, &skipped, r->err, sizeof(r->err));
    reemit_request_free(&req);
    secs = (double)(pace_monotonic_us() - t0) / 1e6;
    switch (res) {
    case REEMIT_DONE:
        log_event(LOG_LEVEL_INFO, m->u.message.lsn, NULL, -1,
                  "re-emit request %s: %llu events produced, %llu bad rows skipped, in %.1f s "
                  "(%.0f rows/s); confirmed once Kafka acknowledged them",
                  x.request, (unsigned long long)sent, (unsigned long long)skipped, secs,
                  secs > 0 ? (double)sent / secs : 0.0);
        return true;
    case REEMIT_STOPPED:
        log_event(LOG_LEVEL_WARN, m->u.message.lsn, NULL, -1,
                  "re-emit request %s interrupted after %llu events; it is served again from "
                  "its start when the stream comes back",
                  x.request, (unsigned long long)sent);
        *end = x.end;
        return false;
    case REEMIT_ERETRY:
        log_warn("re-emit request %s: %s; reconnecting, it is served again", x.request, r->err);
        *end = STREAM_RETRY;
        return false;
    case REEMIT_EFATAL:
        break;
    }
    log_error("re-emit request %s: %s; stopping without confirming it", x.request, r->err);
    *end = STREAM_FATAL;
    return false;
}

static bool handle_xlogdata(struct relay *r, const uint8_t *buf, int len, enum stream_end *end)
{
    enum pgout_status st;

    if (len < REPL_XLOGDATA_HDR_LEN) {
        log_error("protocol error: XLogData of %d bytes", len);
        *end = STREAM_FATAL;
        return false;
    }
    /* 'w', dataStart, walEnd, then the walsender's sendTime
     * (docs/protocol.md#the-copyboth-envelope) */
    r->xlog_sent_us = (int64_t)be_get64(buf + 17) + PG_EPOCH_OFFSET_US;
    st = pgout_decode(buf + REPL_XLOGDATA_HDR_LEN, (size_t)len - REPL_XLOGDATA_HDR_LEN, 1, r->msg);
    if (st != PGOUT_OK) {
        log_event(LOG_LEVEL_ERROR, be_get64(buf + 1), NULL, -1,
                  "protocol error: cannot decode pgoutput message '%c': %s",
                  len > REPL_XLOGDATA_HDR_LEN ? buf[REPL_XLOGDATA_HDR_LEN] : '?',
                  pgout_strerror(st));
        *end = STREAM_FATAL;
        return false;
    }
    switch (r->msg->tag) {
    case PGOUT_MSG_BEGIN:
        return handle_begin(r, end);
    case PGOUT_MSG_COMMIT:
        return handle_commit(r, end);
    case PGOUT_MSG_RELATION:
        return handle_relation(r, end);
    case PGOUT_MSG_INSERT:
        return handle_insert(r, end);
    case PGOUT_MSG_MESSAGE:
        if (r->msg->u.message.prefix.len == strlen(REEMIT_PREFIX) &&
            memcmp(r->msg->u.message.prefix.ptr, REEMIT_PREFIX, strlen(REEMIT_PREFIX)) == 0)
            return handle_reemit_request(r, end);
        if (r->cfg->source_messages &&
            r->msg->u.message.prefix.len == strlen(r->cfg->message_prefix) &&
            memcmp(r->msg->u.message.prefix.ptr, r->cfg->message_prefix,
                   r->msg->u.message.prefix.len) == 0)
            return handle_outbox_message(r, end);
        /* A non-transactional message has been fully received: its position
         * is as safe to confirm as a keepalive's (R3). */
        if (!r->in_txn && !(r->msg->u.message.flags & 1))
            tracker_note_server_position(r->tracker, r->msg->u.message.lsn);
        return true;
    default:
        /* Type, Origin, Update, Delete, Truncate: nothing to publish. */
        return true;
    }
}

/* --end-lsn via the server's position: everything before wal_end has been
 * received and, the tracker being idle, delivered. */
static bool end_position_reached(struct relay *r, uint64_t wal_end, enum stream_end *end)
{
    if (r->cfg->end_lsn == 0 || wal_end < r->cfg->end_lsn)
        return false;
    log_info("reached end position " LSN_FMT, LSN_ARGS(r->cfg->end_lsn));
    r->end_reached = true;
    *end = STREAM_STOP;
    return true;
}

static bool handle_keepalive(struct relay *r, const uint8_t *buf, int len, enum stream_end *end)
{
    uint64_t wal_end;

    if (len < REPL_KEEPALIVE_LEN) {
        log_error("protocol error: keepalive of %d bytes", len);
        *end = STREAM_FATAL;
        return false;
    }
    wal_end = be_get64(buf + 1);
    if (wal_end > r->server_wal_end)
        r->server_wal_end = wal_end;
    if (buf[17]) {
        int64_t now = pace_monotonic_us();

        r->fb.reply_requested = true;
        /* A server shutting down (WalSndDone) asks again after every reply
         * until the client confirms everything it sent. With events still
         * undelivered (or a --replay-window holding the position back) the
         * relay cannot, so answering would only flood it and hold up the
         * shutdown: close the stream instead and come back when the server
         * does. An idle relay confirms at the first request, so no burst. */
        if (now - r->reply_burst_start_us > 1000000) {
            r->reply_burst_start_us = now;
            r->reply_burst = 0;
        }
        if (++r->reply_burst > 20) {
            log_warn("server keeps asking for a confirmation of " LSN_FMT " that needs undelivered "
                     "events (shutting down?); closing the stream",
                     LSN_ARGS(wal_end));
            *end = STREAM_RETRY;
            return false;
        }
    }
    if (r->in_txn)
        return true;
    tracker_note_server_position(r->tracker, wal_end);
    if (wal_end > r->write_lsn)
        r->write_lsn = wal_end;
    if (!tracker_idle(r->tracker)) {
        /* Confirmable once what is in flight is delivered (R3). */
        r->pending_wal_end = wal_end;
        return true;
    }
    return !end_position_reached(r, wal_end, end);
}

static bool handle_copydata(struct relay *r, const uint8_t *buf, int len, enum stream_end *end)
{
    switch (buf[0]) {
    case 'w':
        return handle_xlogdata(r, buf, len, end);
    case 'k':
        return handle_keepalive(r, buf, len, end);
    default:
        log_error("protocol error: unknown CopyData message '%c'", buf[0]);
        *end = STREAM_FATAL;
        return false;
    }
}

static enum stream_end check_kafka(struct relay *r)
{
    char fatal[512];

    if (r->fatal)
        return STREAM_FATAL;
    if (sink_fatal(r->sink, fatal, sizeof(fatal))) {
        if (r->eos != NULL) {
            snprintf(r->err, sizeof(r->err), "producer hit a fatal error (%s)", fatal);
            return eos_end(r, sink_fenced(r->sink) ? EOS_FENCED : EOS_FATAL);
        }
        log_warn("producer hit a fatal error (%s); rewinding with a new producer", fatal);
        return STREAM_REWIND;
    }
    if (r->rewind)
        return STREAM_REWIND;
    return STREAM_STOP; /* no trouble */
}

/* --heartbeat-interval: one beat per interval, never blocking the loop
 * except to (re)connect; a failing heartbeat is logged, not fatal. */
static void heartbeat(struct relay *r)
{
    int64_t now = pace_monotonic_us();

    if (r->cfg->heartbeat_interval_ms <= 0 || now < r->next_heartbeat_us)
        return;
    r->next_heartbeat_us = now + (int64_t)r->cfg->heartbeat_interval_ms * 1000;
    if (r->heartbeat == NULL) {
        r->heartbeat = repl_heartbeat_open(r->opts, r->err, sizeof(r->err));
        if (r->heartbeat == NULL) {
            log_warn("%s", r->err);
            return;
        }
    }
    if (repl_heartbeat_tick(r->heartbeat, r->err, sizeof(r->err)) != REPL_OK) {
        log_warn("%s; reconnecting at the next beat", r->err);
        repl_heartbeat_close(r->heartbeat);
        r->heartbeat = NULL;
    }
}

/*
 * Once the outbox table leaves the publication (ALTER PUBLICATION ... DROP
 * TABLE), pgoutput silently stops sending its inserts and the relay would
 * confirm keepalive positions past them: a silent loss. So a position is
 * confirmed only after a check that started once it had been received found
 * the table still published (a change committed before that position would be
 * visible to the check). At most one check per --status-interval, and only
 * while there is something new to confirm. Returns false when the table is
 * gone from the publication (logged).
 */
static bool publication_verified(struct relay *r, uint64_t safe)
{
    int64_t now = pace_monotonic_us();
    uint64_t received = r->write_lsn > safe ? r->write_lsn : safe;

    if (r->cfg->source_messages || safe <= r->pub_verified_lsn ||
        now - r->pub_checked_us < r->fb.interval_us)
        return true;
    r->pub_checked_us = now;
    switch (repl_publication_check(r->opts, r->err, sizeof(r->err))) {
    case REPL_OK:
        r->pub_verified_lsn = received;
        return true;
    case REPL_EFATAL:
        log_error("%s", r->err);
        return false;
    default:
        log_warn("%s; not confirming past " LSN_FMT " until it succeeds", r->err,
                 LSN_ARGS(r->pub_verified_lsn));
        return true;
    }
}

static enum stream_end stream(struct relay *r)
{
    const struct relay_config *cfg = r->cfg;
    enum stream_end end = STREAM_STOP;

    r->last_server_msg_us = pace_monotonic_us();
    r->probe_sent = false;
    for (;;) {
        int n = 0;
        int64_t wait_us;
        uint64_t safe;
        struct pollfd pfd[3];
        int npfd = 0;
        bool heard = false;

        if (should_stop(r))
            return STREAM_STOP;
        for (int budget = 0; budget < RELAY_RECV_BUDGET; budget++) {
            const uint8_t *buf;

            n = repl_recv(r->rc, &buf, r->err, sizeof(r->err));
            if (n == 0)
                break;
            if (n < 0) {
                if (n == REPL_EFATAL) {
                    log_error("%s", r->err);
                    return STREAM_FATAL;
                }
                log_warn("%s", r->err);
                return STREAM_RETRY;
            }
            if (!handle_copydata(r, buf, n, &end))
                return end;
            heard = true;
        }
        if (heard) {
            /* Once per batch, not per message: the server is alive. */
            r->last_server_msg_us = pace_monotonic_us();
            r->probe_sent = false;
        }
        sink_poll(r->sink, 0);
        if ((end = check_kafka(r)) != STREAM_STOP)
            return end;
        if (!eos_close(r, false, &end))
            return end;
        if (r->pending_wal_end != 0 && !r->in_txn) {
            uint64_t pending = r->pending_wal_end;

            tracker_note_server_position(r->tracker, pending);
            if (tracker_idle(r->tracker)) {
                r->pending_wal_end = 0;
                if (end_position_reached(r, pending, &end))
                    return end;
            }
        }
        safe = tracker_safe_lsn(r->tracker);
        if (r->end_reached)
            return STREAM_STOP;
        if (!publication_verified(r, safe))
            return STREAM_FATAL;
        if (feedback_due(&r->fb, safe, pace_monotonic_us()) && !send_status(r, false))
            return STREAM_RETRY;

        /* R8: a server that stopped talking is probed once, then dropped. */
        {
            int64_t silent_ms = (pace_monotonic_us() - r->last_server_msg_us) / 1000;
            if (silent_ms > cfg->server_timeout_ms) {
                log_warn("no message from the server for %lld ms; reconnecting",
                         (long long)silent_ms);
                return STREAM_RETRY;
            }
            if (silent_ms > cfg->server_timeout_ms / 2 && !r->probe_sent) {
                r->probe_sent = true;
                if (!send_status(r, true))
                    return STREAM_RETRY;
            }
        }
        heartbeat(r);
        observe(r, false);
        if (n > 0)
            continue; /* budget used up with more buffered: go round again */

        wait_us = feedback_wait_us(&r->fb, safe, pace_monotonic_us());
        if (wait_us > 1000000)
            wait_us = 1000000;
        if (r->eos != NULL && eos_wait_us(r->eos, pace_monotonic_us()) < wait_us)
            wait_us = eos_wait_us(r->eos, pace_monotonic_us());
        pfd[npfd++] = (struct pollfd){.fd = repl_socket(r->rc), .events = POLLIN};
        pfd[npfd++] = (struct pollfd){.fd = sink_wakeup_fd(r->sink), .events = POLLIN};
        /* Once seen, the stop request is the flag's business; a still-readable
         * pipe would only spin this poll. */
        if (cfg->stop_fd >= 0 && !*cfg->stop)
            pfd[npfd++] = (struct pollfd){.fd = cfg->stop_fd, .events = POLLIN};
        if (poll(pfd, (nfds_t)npfd, (int)((wait_us + 999) / 1000)) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return STREAM_FATAL;
        }
        if (pfd[0].revents != 0 && repl_consume(r->rc, r->err, sizeof(r->err)) != REPL_OK) {
            log_warn("%s", r->err);
            return STREAM_RETRY;
        }
    }
}

/*
 * Stop path (SIGTERM in docs/guarantees.md#what-happens-when): stop reading,
 * wait a bounded time for deliveries, confirm what was delivered, end the
 * stream politely. Returns true when everything produced was delivered.
 */
static bool drain_and_confirm(struct relay *r)
{
    int64_t budget_ms = r->cfg->shutdown_timeout_ms;
    bool complete = true;

    if (r->stop_deadline_us != 0) {
        budget_ms = (r->stop_deadline_us - pace_monotonic_us()) / 1000;
        if (budget_ms < 0)
            budget_ms = 0;
    }
    if (r->sink != NULL) {
        int left = sink_flush(r->sink, (int)budget_ms);
        if (left > 0) {
            log_warn("%d events still undelivered after %lld ms; they will be sent again on the "
                     "next start",
                     left, (long long)budget_ms);
            complete = false;
        }
    }
    (void)tracker_safe_lsn(r->tracker); /* pops what was delivered, so idle is accurate */
    if (r->fatal || r->rewind || tracker_failed(r->tracker) || !tracker_idle(r->tracker))
        complete = false;
    if (r->rc != NULL) {
        if (send_status(r, false))
            log_info("confirmed position " LSN_FMT, LSN_ARGS(tracker_safe_lsn(r->tracker)));
        repl_close(r->rc, 2000);
        r->rc = NULL;
    }
    return complete;
}

/* Remembers the walsender of a replication connection this process opened. */
static void remember_own(struct relay *r, const struct repl_walsender *w)
{
    if (w->pid == 0)
        return;
    if (r->nown == RELAY_OWN_WALSENDERS) {
        memmove(&r->own[0], &r->own[1], (RELAY_OWN_WALSENDERS - 1) * sizeof(r->own[0]));
        r->nown--;
    }
    r->own[r->nown++] = *w;
}

/*
 * Where the first connection of a run starts, and the checks that refuse a
 * start that would skip events silently (docs/protocol.md#r9, #p8): the saved
 * position against the slot, --start-lsn against the slot and the server.
 * Logs its refusals; returns false for them.
 */
static bool first_start_position(struct relay *r, const struct repl_slot_info *info,
                                 uint64_t *start)
{
    const struct relay_config *cfg = r->cfg;
    uint64_t pos = info->confirmed_flush;
    struct relay_state st;

    if (cfg->state_file != NULL) {
        int found = state_load(cfg->state_file, &st, r->err, sizeof(r->err));

        if (found < 0) {
            log_error("%s", r->err);
            return false;
        }
        if (found == 0 && !info->created)
            log_info("no state file %s yet: starting from slot \"%s\" at " LSN_FMT, cfg->state_file,
                     cfg->slot, LSN_ARGS(info->confirmed_flush));
        if (found == 1) {
            if (strcmp(st.slot, cfg->slot) != 0) {
                log_error("state file %s belongs to slot \"%s\", not \"%s\": use another "
                          "--state-file",
                          cfg->state_file, st.slot, cfg->slot);
                return false;
            }
            if (strcmp(st.systemid, info->systemid) != 0) {
                log_error("state file %s was written against another cluster (system identifier "
                          "%s, this server is %s): a failover or restore; the slot here has not "
                          "followed the relay's history. Check for a gap, then delete the state "
                          "file to start over",
                          cfg->state_file, st.systemid, info->systemid);
                return false;
            }
            if (info->created) {
                log_error("slot \"%s\" did not exist, but state file %s says this relay "
                          "delivered up to " LSN_FMT " from it: the slot was dropped, and "
                          "transactions committed between then and " LSN_FMT
                          " were never relayed. Replay them from the outbox table, then delete "
                          "the state file to start over",
                          cfg->slot, cfg->state_file, LSN_ARGS(st.lsn),
                          LSN_ARGS(info->confirmed_flush));
                return false;
            }
            if (info->confirmed_flush > st.lsn) {
                log_error("slot \"%s\" has confirmed_flush_lsn " LSN_FMT
                          ", ahead of the position this relay saved as delivered (" LSN_FMT
                          "): the slot was recreated or advanced by someone else, so transactions "
                          "in between may never have reached Kafka. Check, then delete %s to "
                          "start over",
                          cfg->slot, LSN_ARGS(info->confirmed_flush), LSN_ARGS(st.lsn),
                          cfg->state_file);
                return false;
            }
            if (st.lsn > info->server_wal_end) {
                log_error("state file %s says " LSN_FMT " was delivered, beyond the server's "
                          "WAL end " LSN_FMT ": the server was restored to an earlier point. "
                          "Check, then delete the state file to start over",
                          cfg->state_file, LSN_ARGS(st.lsn), LSN_ARGS(info->server_wal_end));
                return false;
            }
            /* A crash can move the slot back (it is saved at checkpoints);
             * the saved position avoids re-sending what Kafka has. */
            pos = st.lsn;
            r->saved_lsn = st.lsn;
            log_info("resuming from saved position " LSN_FMT " (state file %s, slot at " LSN_FMT
                     ")",
                     LSN_ARGS(st.lsn), cfg->state_file, LSN_ARGS(info->confirmed_flush));
        }
    }
    if (cfg->start_lsn != 0) {
        if (cfg->start_lsn > info->server_wal_end) {
            log_error("--start-lsn " LSN_FMT " is beyond the server's current WAL position " LSN_FMT
                      ": confirming it would skip every transaction until then",
                      LSN_ARGS(cfg->start_lsn), LSN_ARGS(info->server_wal_end));
            return false;
        }
        if (cfg->start_lsn < info->confirmed_flush) {
            log_error("--start-lsn " LSN_FMT
                      " is older than slot \"%s\"'s confirmed_flush_lsn " LSN_FMT
                      ": the server no longer has those transactions for this slot",
                      LSN_ARGS(cfg->start_lsn), cfg->slot, LSN_ARGS(info->confirmed_flush));
            return false;
        }
        pos = cfg->start_lsn;
    }
    *start = pos;
    return true;
}

enum relay_exit relay_run(const struct relay_config *cfg)
{
    struct relay r = {.cfg = cfg};
    struct repl_opts opts = {
        .dburl = cfg->database_url,
        .slot = cfg->slot,
        .publication = cfg->publication,
        .table_schema = cfg->table_schema,
        .table_name = cfg->table_name,
        .create_slot = cfg->create_slot,
        .create_publication = cfg->create_publication,
        .proto_version = 1,
        .connect_timeout_s = cfg->connect_timeout_s,
        .stop_fd = cfg->stop_fd,
        .messages = cfg->source_messages,
    };
    enum relay_exit result = RELAY_EXIT_ERROR;
    bool first = true;
    int backoff_ms = 0;
    int64_t busy_since_us = 0;
    int own_holder_logged = 0;
    char app_name[48];

    srandom((unsigned)pace_now_us() ^ (unsigned)getpid());
    /* Which process a walsender in pg_stat_replication belongs to: the pid
     * for operators, a random part for a pid reused after a restart. */
    snprintf(app_name, sizeof(app_name), "cdc-relay/%ld.%04lx", (long)getpid(),
             (unsigned long)(random() & 0xffff));
    opts.application_name = app_name;
    opts.own = r.own;
    r.failpoint_after_delivery =
        getenv("CDC_TEST_FAILPOINT") != NULL &&
        strcmp(getenv("CDC_TEST_FAILPOINT"), "after-delivery-before-status") == 0;
    r.opts = &opts;
    r.msg = xmalloc(sizeof(*r.msg));
    r.tracker = tracker_new(0);
    r.fb.interval_us = (int64_t)cfg->status_interval_ms * 1000;
    r.fb.min_gap_us = 100000;
    if (cfg->exactly_once) {
        struct eos_config ec = {
            .slot = cfg->slot,
            .checkpoint_topic = cfg->checkpoint_topic,
            .brokers = cfg->brokers,
            .props = cfg->kafka_props,
            .nprops = cfg->nkafka_props,
            .max_events = cfg->txn_max_events,
            .max_ms = cfg->txn_max_ms,
        };
        r.eos = eos_new(&ec);
    }
    catchup_init(&r.catchup, CATCHUP_INTERVAL_US, CATCHUP_ENTER_BYTES, CATCHUP_DONE_BYTES);
    observe(&r, true);

    while (!*cfg->stop) {
        struct repl_slot_info info;
        enum repl_status st;
        enum stream_end end;
        uint64_t start;

        if (r.sink == NULL) {
            size_t nprops = cfg->nkafka_props;
            const struct sink_prop *props =
                r.eos != NULL ? eos_producer_props(r.eos, &nprops) : cfg->kafka_props;

            r.sink = sink_new(cfg->brokers, props, nprops, on_delivery, &r, r.err, sizeof(r.err));
            if (r.sink == NULL) {
                log_error("%s", r.err);
                goto out;
            }
            if (cfg->dead_letter_topic != NULL)
                sink_set_dead_letter(r.sink, cfg->dead_letter_topic, on_dead_letter);
        }
        if (backoff_ms > 0) {
            log_info("reconnecting in %d ms", backoff_ms);
            pace_sleep_ms(backoff_ms, cfg);
            if (*cfg->stop)
                break;
        }
        opts.nown = r.nown;
        st = repl_open(&opts, &r.rc, &info, r.err, sizeof(r.err));
        if (st == REPL_EBUSY && info.holder_own) {
            /* Our own walsender from a connection we gave up on (a stall
             * longer than --server-timeout): nobody else streams, so wait
             * for it without limit; it was asked to end. */
            if (own_holder_logged != info.holder.pid)
                log_warn("%s; retrying every second until it is gone", r.err);
            else
                log_debug("%s", r.err);
            own_holder_logged = info.holder.pid;
            busy_since_us = 0;
            backoff_ms = 1000;
            r.reconnects_pg++;
            continue;
        }
        if (st == REPL_EBUSY) {
            int64_t now = pace_monotonic_us();
            if (busy_since_us == 0)
                busy_since_us = now;
            /* A killed relay's walsender lingers until it notices the
             * closed socket; give it a few seconds before calling it a
             * second relay. */
            if (now - busy_since_us > RELAY_BUSY_GIVE_UP_US) {
                log_error("%s; stop the other relay or use another --slot (exit %d: a later "
                          "start may find the slot free)",
                          r.err, RELAY_EXIT_TEMPORARY);
                result = RELAY_EXIT_TEMPORARY;
                goto out;
            }
            log_warn("%s; retrying", r.err);
            backoff_ms = 1000;
            r.reconnects_pg++;
            continue;
        }
        if (st == REPL_EFATAL) {
            log_error("%s", r.err);
            goto out;
        }
        if (st == REPL_ESTOP)
            break;
        if (st != REPL_OK) {
            log_warn("%s", r.err);
            backoff_ms = pace_backoff_next(backoff_ms, cfg->reconnect_max_ms);
            r.reconnects_pg++;
            continue;
        }
        busy_since_us = 0;
        own_holder_logged = 0;
        remember_own(&r, &info.self);
        if (first)
            r.slot_created_unused = info.created;
        /* repl_open checked the table is in the publication (or message mode
         * needs no table): everything up to now is covered. */
        if (cfg->source_messages)
            r.pub_verified_lsn = UINT64_MAX;
        else if (info.server_wal_end > r.pub_verified_lsn)
            r.pub_verified_lsn = info.server_wal_end;
        if (info.server_wal_end > r.server_wal_end)
            r.server_wal_end = info.server_wal_end;
        if (info.confirmed_flush > r.confirmed_lsn)
            r.confirmed_lsn = info.confirmed_flush; /* until our first status update */
        if (info.publication_created)
            log_info("created publication \"%s\" (for table %s.%s with publish = 'insert' when "
                     "the table exists)",
                     cfg->publication, cfg->table_schema, cfg->table_name);
        if (info.created)
            log_info("created replication slot \"%s\" (pgoutput) at " LSN_FMT, cfg->slot,
                     LSN_ARGS(info.confirmed_flush));
        if (r.eos != NULL && !eos_attached(r.eos)) {
            uint64_t checkpoint;
            enum eos_result res =
                eos_attach(r.eos, r.sink, info.systemid, &checkpoint, r.err, sizeof(r.err));

            if (res == EOS_RETRY) {
                log_warn("%s; retrying", r.err);
                repl_abort(r.rc);
                r.rc = NULL;
                backoff_ms = pace_backoff_next(backoff_ms, cfg->reconnect_max_ms);
                r.reconnects_kafka++;
                continue;
            }
            if (res != EOS_OK) {
                (void)eos_end(&r, res);
                goto out;
            }
            if (checkpoint > info.server_wal_end) {
                log_error("checkpoint topic %s says " LSN_FMT " was committed, beyond the "
                          "server's WAL end " LSN_FMT ": the server was restored to an earlier "
                          "point. Check, then use another --checkpoint-topic",
                          cfg->checkpoint_topic, LSN_ARGS(checkpoint),
                          LSN_ARGS(info.server_wal_end));
                goto out;
            }
            log_info("exactly-once: transactional.id %s ready; checkpoint of slot \"%s\" in %s "
                     "at " LSN_FMT,
                     eos_transactional_id(r.eos), cfg->slot, cfg->checkpoint_topic,
                     LSN_ARGS(checkpoint));
            r.eos_checkpoint = checkpoint;
        }
        if (first) {
            if (!first_start_position(&r, &info, &start))
                goto out;
            /* Kafka has every transaction up to the checkpoint: a server that
             * re-sends them (slot moved back, state file behind) is skipped. */
            if (r.eos != NULL && r.eos_checkpoint > start)
                start = r.eos_checkpoint;
            tracker_free(r.tracker);
            r.tracker = tracker_new(start);
            r.held_lsn = info.confirmed_flush > 0 ? info.confirmed_flush : start;
            snprintf(r.systemid, sizeof(r.systemid), "%s", info.systemid);
            first = false;
            if (cfg->start_lsn != 0)
                catchup_arm(&r.catchup); /* a replay: reported from 1 MiB on */
            /* From now on a missing slot or publication is not a first
             * start but a loss: never recreate them silently (P8). */
            opts.create_slot = false;
            opts.create_publication = false;
        } else {
            start = tracker_safe_lsn(r.tracker);
            if (r.eos != NULL && r.eos_checkpoint > start) {
                /* A commit reported as failed may have gone through (the
                 * checkpoint says); the old producer is gone, so a fresh
                 * tracker loses no reports. */
                start = r.eos_checkpoint;
                tracker_free(r.tracker);
                r.tracker = tracker_new(start);
            }
            if (strcmp(info.systemid, r.systemid) != 0) {
                log_error("the server is another cluster now (system identifier %s, was %s): a "
                          "failover or restore; slot \"%s\" there has not followed this relay's "
                          "history, so events may be missing; check, then restart the relay",
                          info.systemid, r.systemid, cfg->slot);
                goto out;
            }
            if (info.confirmed_flush > start) {
                log_error("slot \"%s\" has confirmed_flush_lsn " LSN_FMT
                          ", ahead of the last position this relay delivered (" LSN_FMT
                          "): something else advanced or recreated it, and the transactions in "
                          "between may never have reached Kafka",
                          cfg->slot, LSN_ARGS(info.confirmed_flush), LSN_ARGS(start));
                goto out;
            }
        }
        relcache_free(r.relcache);
        r.relcache = relcache_new();
        r.have_layout = false;
        r.in_txn = false;
        r.pending_wal_end = 0;
        st = repl_start(r.rc, start, r.err, sizeof(r.err));
        if (st != REPL_OK) {
            if (st == REPL_ESTOP)
                break;
            if (st == REPL_EFATAL) {
                log_error("%s", r.err);
                goto out;
            }
            log_warn("%s", r.err);
            repl_abort(r.rc);
            r.rc = NULL;
            backoff_ms =
                st == REPL_EBUSY ? 1000 : pace_backoff_next(backoff_ms, cfg->reconnect_max_ms);
            r.reconnects_pg++;
            continue;
        }
        r.slot_created_unused = false;
        log_info("streaming slot \"%s\" publication \"%s\" from " LSN_FMT " (database \"%s\")",
                 cfg->slot, cfg->publication, LSN_ARGS(start), info.dbname);
        r.fb.last_sent_us = 0; /* answer a new server at once */
        r.fb.reply_requested = false;
        backoff_ms = 0;
        r.streaming = true;
        r.stream_start_lsn = start;
        r.last_server_msg_us = pace_monotonic_us(); /* as stream() starts; for /readyz */
        observe(&r, true);
        notify_ready_streaming(cfg);

        end = eos_stream_end(&r, stream(&r));
        r.streaming = false;
        if (end == STREAM_RETRY)
            r.reconnects_pg++;
        else if (end == STREAM_REWIND)
            r.reconnects_kafka++;
        observe(&r, true);
        switch (end) {
        case STREAM_STOP:
            if (!drain_and_confirm(&r) && r.end_reached) {
                /* A replay script must not take this run for complete. */
                log_error("--end-lsn reached but not every event was delivered");
                goto out;
            }
            result = RELAY_EXIT_OK;
            goto out;
        case STREAM_FATAL:
            /* Whatever was delivered is still worth confirming. */
            drain_and_confirm(&r);
            goto out;
        case STREAM_RETRY:
            /* The producer keeps its in-flight events; a half-received
             * transaction will be re-sent whole, so its partial entry must
             * no longer hold the watermark back. */
            tracker_abandon_open(r.tracker);
            r.in_txn = false;
            repl_abort(r.rc);
            r.rc = NULL;
            backoff_ms = pace_backoff_next(backoff_ms, cfg->reconnect_max_ms);
            break;
        case STREAM_REWIND:
            /* New producer, stream restarted from the last delivered
             * position: per-key order holds, duplicates are possible. */
            log_warn("rewinding to " LSN_FMT " with a new producer",
                     LSN_ARGS(tracker_safe_lsn(r.tracker)));
            repl_abort(r.rc);
            r.rc = NULL;
            if (r.eos != NULL)
                eos_detach(r.eos);
            sink_free(r.sink);
            r.sink = NULL;
            tracker_reset(r.tracker);
            r.rewind = false;
            backoff_ms = pace_backoff_next(backoff_ms, cfg->reconnect_max_ms);
            break;
        }
    }
    /* Stopped while not streaming (in backoff). */
    drain_and_confirm(&r);
    result = RELAY_EXIT_OK;
out:
    if (r.slot_created_unused && r.rc != NULL && result != RELAY_EXIT_OK) {
        /* A refused start leaves no slot of its own making to hold WAL. */
        if (repl_drop_slot(r.rc, r.err, sizeof(r.err)) == REPL_OK)
            log_info("dropped replication slot \"%s\" again: this start created it and was "
                     "refused",
                     cfg->slot);
        else
            log_error("could not drop replication slot \"%s\", created by this refused start: "
                      "%s; drop it by hand (SELECT pg_drop_replication_slot('%s')), it holds WAL",
                      cfg->slot, r.err, cfg->slot);
    }
    log_info("relay stopped: %llu events produced, %llu delivered, confirmed " LSN_FMT,
             (unsigned long long)r.produced, (unsigned long long)r.delivered,
             LSN_ARGS(tracker_safe_lsn(r.tracker)));
    repl_abort(r.rc);
    repl_heartbeat_close(r.heartbeat);
    if (r.eos != NULL)
        log_info("exactly-once: %llu Kafka transactions committed",
                 (unsigned long long)eos_commits(r.eos));
    eos_free(r.eos);
    sink_free(r.sink);
    relcache_free(r.relcache);
    tracker_free(r.tracker);
    free(r.scratch);
    free(r.msg);
    return r.fenced ? RELAY_EXIT_FENCED : result;
}
