/*
 * The stream loop, in the shape of PostgreSQL's receivelog.c HandleCopyStream:
 * compute the next wake-up, drain every buffered CopyData message, serve
 * Kafka's delivery reports, recompute the confirmable position, answer the
 * server. The confirmed (flush) LSN only ever comes from tracker_safe_lsn,
 * which only moves on delivery reports (R1-R3), through confirm_next; nothing
 * here guesses.
 */
#include "stream.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eos.h"
#include "log.h"
#include "metrics.h"
#include "pace.h"
#include "pgtime.h"
#include "relcache.h"
#include "state.h"
#include "tracker.h"
#include "xmem.h"

/* Messages handled before the loop serves reports and feedback again, so a
 * backlog cannot starve the status updates. */
#define STREAM_RECV_BUDGET 2048
/* The publication check of a clean stop: polled this often, this many times. */
#define STREAM_STOP_CHECK_POLL_MS 50
#define STREAM_STOP_CHECK_POLLS   100
/* --exactly-once: unfenced fatal producer errors in a row, with no Kafka
 * commit between them, before the relay gives up (exit 1) */
#define STREAM_FATAL_REWINDS_MAX 5

static const struct stream_clock pace_clock = {pace_monotonic_us, pace_now_us};

void stream_init(struct stream *s, const struct relay_common_config *common,
                 const struct relay_stream_config *cfg)
{
    memset(s, 0, sizeof(*s));
    s->common = common;
    s->cfg = cfg;
    s->clock = &pace_clock;
    s->msg = xmalloc(sizeof(*s->msg));
    s->tracker = tracker_new(0);
    confirm_init(&s->confirm, cfg->state_file != NULL, cfg->replay_window_s * 1000000);
    s->fb.interval_us = (int64_t)cfg->status_interval_ms * 1000;
    s->fb.min_gap_us = 100000;
    catchup_init(&s->catchup, CATCHUP_INTERVAL_US, CATCHUP_ENTER_BYTES, CATCHUP_DONE_BYTES);
}

void stream_fini(struct stream *s)
{
    relcache_free(s->relcache);
    tracker_free(s->tracker);
    free(s->msg);
    free(s->scratch);
    s->relcache = NULL;
    s->tracker = NULL;
    s->msg = NULL;
}

void stream_reset(struct stream *s)
{
    relcache_free(s->relcache);
    s->relcache = relcache_new();
    s->have_layout = false;
    s->in_txn = false;
    confirm_drop_keepalive(&s->confirm);
}

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
void stream_observe_delivered(struct stream *s, uint64_t seq)
{
    const struct latency_times *times;

    if (s->eos != NULL || tracker_failed(s->tracker) || !tracker_txn_delivered(s->tracker, seq))
        return;
    times = tracker_times(s->tracker, seq);
    if (times->produced_us != 0)
        latency_observe(s->latency, times, s->clock->wall_us());
}

void stream_on_delivery(void *arg, uint64_t seq, const char *err, bool permanent,
                        const char *event_id, const char *lsn_text)
{
    struct stream *s = arg;

    if (!tracker_ack(s->tracker, seq, err == NULL)) {
        /* A report for nothing in flight means the books are wrong; only a
         * rewind makes them right again. */
        log_report(LOG_LEVEL_ERROR, lsn_text, event_id,
                   "delivery report for unknown transaction; rewinding", NULL);
        s->rewind = true;
        return;
    }
    if (err == NULL) {
        s->stats.delivered++;
        if (s->failpoint_after_delivery)
            _exit(70);
        stream_observe_delivered(s, seq);
        return;
    }
    s->stats.failed++;
    if (permanent) {
        /* With a dead-letter topic the sink redirects every permanent
         * failure, so one that arrives here is the copy's own: stop. */
        log_report(LOG_LEVEL_ERROR, lsn_text, event_id,
                   s->cfg->dead_letter_topic != NULL
                       ? "dead-letter delivery failed permanently, stopping without confirming it"
                       : "delivery failed permanently, stopping without confirming it",
                   err);
        s->fatal = true;
    } else {
        log_report(LOG_LEVEL_WARN, lsn_text, event_id,
                   "delivery failed, rewinding to the last delivered position", err);
        s->rewind = true;
    }
}

/* The sink redirected a failed event (err set) or the dead-letter topic
 * acknowledged its copy (err NULL; on_delivery follows and counts it). */
void stream_on_dead_letter(void *arg, uint64_t seq, const char *err, const char *event_id,
                           const char *lsn_text)
{
    struct stream *s = arg;

    (void)seq;
    if (err != NULL) {
        log_report(LOG_LEVEL_WARN, lsn_text, event_id,
                   "delivery failed permanently, sending the event to the dead-letter topic", err);
        return;
    }
    s->stats.dead_lettered++;
    log_report(LOG_LEVEL_INFO, lsn_text, event_id, "dead-letter topic acknowledged the event",
               NULL);
}

/* Returns false when the connection failed or the position could not be
 * saved (both logged; the latter also marks the relay fatal). */
static bool send_status(struct stream *s, bool reply_requested)
{
    uint64_t delivered = tracker_safe_lsn(s->tracker);
    struct confirm_status cs =
        confirm_next(&s->confirm, delivered, s->write_lsn, s->clock->mono_us());

    /* R9: the saved position is on disk before the server may forget it. */
    if (cs.save != 0) {
        struct relay_state st = {.lsn = cs.save};

        snprintf(st.slot, sizeof(st.slot), "%s", s->cfg->slot);
        snprintf(st.systemid, sizeof(st.systemid), "%s", s->systemid);
        st.timeline = s->timeline;
        if (state_save(s->cfg->state_file, &st, s->err, sizeof(s->err)) != 0) {
            log_error("%s; stopping so that nothing is confirmed unsaved", s->err);
            s->fatal = true;
            return false;
        }
        confirm_saved(&s->confirm, cs.save);
    }
    if (s->src_ops->send_status(s->src, cs.write, cs.flush, cs.apply,
                                pgtime_from_unix_us(s->clock->wall_us()), reply_requested, s->err,
                                sizeof(s->err)) != REPL_OK) {
        log_warn("%s", s->err);
        return false;
    }
    log_debug("status update write=" LSN_FMT " flush=" LSN_FMT " delivered=" LSN_FMT,
              LSN_ARGS(cs.write), LSN_ARGS(cs.flush), LSN_ARGS(delivered));
    feedback_sent(&s->fb, delivered, s->clock->mono_us());
    s->confirmed_lsn = cs.flush;
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

/*
 * Observation only: reports catch-up progress and publishes the metrics
 * snapshot (at most every SHELL_METRICS_PUBLISH_US unless forced). Reads the
 * relay's state; changes nothing the loop decides with.
 */
void stream_observe(struct stream *s, bool force)
{
    int64_t now = s->clock->mono_us();
    uint64_t received = s->write_lsn > s->stream_start_lsn ? s->write_lsn : s->stream_start_lsn;
    struct catchup_report rep;
    struct metrics_snapshot snap;

    if (s->streaming) {
        enum catchup_event ev =
            catchup_update(&s->catchup, now, received, s->server_wal_end, s->stats.received, &rep);
        log_catchup(ev, &rep, received, s->server_wal_end);
    }
    if (!shell_publish_due(s->common->metrics, &s->next_publish_us, now, force))
        return;
    shell_snapshot(&snap, &s->stats, s->common->server_timeout_ms, s->sink_ops, s->sink);
    snap.events_in_flight = tracker_inflight_events(s->tracker);
    snap.received_lsn = received;
    snap.delivered_lsn = tracker_safe_lsn(s->tracker);
    snap.confirmed_lsn = s->confirmed_lsn;
    /* the server has at least what it sent */
    snap.server_wal_end_lsn = s->server_wal_end > received ? s->server_wal_end : received;
    snap.pending_known = tracker_oldest_pending_time(s->tracker, &snap.oldest_pending_commit_us);
    snap.streaming = s->streaming;
    snap.catching_up = s->catchup.active;
    snap.standby_waiting = s->standby_waiting;
    snap.last_server_msg_us = s->last_server_msg_us;
    memcpy(snap.latency, s->latency, sizeof(snap.latency));
    metrics_board_publish(s->common->metrics, &snap);
}

/*
 * A stop request is honoured between transactions, so a clean stop never
 * leaves half a transaction produced (the server would re-send it whole, as
 * duplicates); inside one the relay reads on to its Commit, for at most
 * --shutdown-timeout.
 */
bool stream_should_stop(struct stream *s)
{
    int64_t now = s->clock->mono_us();

    if (!pace_stop_requested(&s->common->stop, s->common->shutdown_timeout_ms, now,
                             &s->stop_deadline_us))
        return false;
    return !s->in_txn || now >= s->stop_deadline_us;
}

/* Keeps the walsender content while the loop is not reading further WAL. */
bool stream_keep_alive(struct stream *s, int poll_ms, enum stream_end *end)
{
    s->sink_ops->poll(s->sink, poll_ms);
    /* The relay is not reading, so the server's silence means nothing. */
    s->last_server_msg_us = s->clock->mono_us();
    s->probe_sent = false;
    stream_observe(s, false);
    if (stream_should_stop(s)) {
        *end = STREAM_STOP;
        return false;
    }
    if (s->fatal || s->rewind) {
        *end = s->fatal ? STREAM_FATAL : STREAM_REWIND;
        return false;
    }
    if (feedback_due(&s->fb, tracker_safe_lsn(s->tracker), s->clock->mono_us()) &&
        !send_status(s, false)) {
        *end = STREAM_RETRY;
        return false;
    }
    return true;
}

/* An unfenced fatal producer error in exactly-once mode (a broker refusing
 * EndTxn after a restart or a hang: INVALID_TXN_STATE) is survived like an
 * abortable one, since the new producer's init_transactions aborts what this
 * one left open; an exit would stay down under systemd
 * (RestartPreventExitStatus=1). Unless it keeps coming back without a single
 * Kafka commit in between: then it is the configuration, not the broker. */
static enum stream_end eos_fatal_rewind(struct stream *s, const char *fatal)
{
    uint64_t commits = eos_commits(s->eos);

    if (commits != s->fatal_commits) {
        s->fatal_commits = commits;
        s->fatal_rewinds = 0;
    }
    if (++s->fatal_rewinds > STREAM_FATAL_REWINDS_MAX) {
        snprintf(s->err, sizeof(s->err),
                 "producer hit a fatal error %d times in a row without a Kafka commit in "
                 "between (%s)",
                 s->fatal_rewinds, fatal);
        log_error("%s", s->err);
        return STREAM_FATAL;
    }
    log_warn("producer hit a fatal error (%s); aborting the Kafka transaction and rewinding to "
             "the last checkpoint with a new producer",
             fatal);
    return STREAM_REWIND;
}

enum stream_end stream_eos_end(struct stream *s, enum eos_result res)
{
    char fatal[512];

    if (res == EOS_FATAL && s->sink != NULL && s->sink_ops->fatal(s->sink, fatal, sizeof(fatal)) &&
        !s->sink_ops->fenced(s->sink))
        return eos_fatal_rewind(s, fatal);
    switch (res) {
    case EOS_OK:
        return STREAM_STOP;
    case EOS_FENCED:
        log_error("%s: another cdc-relay with the same transactional.id has taken over "
                  "(fenced); exiting without confirming anything more",
                  s->err);
        s->fenced = true;
        return STREAM_FATAL;
    case EOS_FATAL:
        log_error("%s", s->err);
        return STREAM_FATAL;
    case EOS_RETRY:
    case EOS_REWIND:
        break;
    }
    log_warn("%s; aborting the Kafka transaction and rewinding to the last checkpoint", s->err);
    return STREAM_REWIND;
}

/* Called between commit steps: the walsender must keep hearing from us. */
static void eos_commit_wait(void *arg)
{
    struct stream *s = arg;

    s->sink_ops->poll(s->sink, 0);
    s->last_server_msg_us = s->clock->mono_us();
    if (feedback_due(&s->fb, tracker_safe_lsn(s->tracker), s->clock->mono_us()))
        (void)send_status(s, false); /* a lost connection shows on the next receive */
}

/* Between source transactions: commits the open batch when it is due (or
 * when force). Returns false with *end set when the stream must end. */
bool stream_eos_close(struct stream *s, bool force, enum stream_end *end)
{
    enum eos_result res;

    if (s->eos == NULL || s->in_txn || !eos_open(s->eos) ||
        (!force && !eos_due(s->eos, s->clock->mono_us())))
        return true;
    res = eos_commit(s->eos, s->tracker, tracker_last_end_lsn(s->tracker), eos_commit_wait, s,
                     s->err, sizeof(s->err));
    if (res == EOS_OK)
        return true;
    *end = stream_eos_end(s, res);
    return false;
}

/* How a stream's end looks with a Kafka transaction open: a clean stop
 * commits the whole source transactions it holds; anything else, or a stop
 * inside a source transaction, aborts it (those transactions are received
 * again), and a Postgres reconnect becomes a rewind because the aborted
 * events must be produced again. */
static enum stream_end eos_stream_end(struct stream *s, enum stream_end end)
{
    char fatal[512];

    if (s->eos == NULL)
        return end;
    /* A produce refused for a fatal error asks for a rewind; when fenced, a
     * new producer would fence the relay that fenced this one. */
    if (end == STREAM_REWIND && s->sink != NULL &&
        s->sink_ops->fatal(s->sink, fatal, sizeof(fatal)) && s->sink_ops->fenced(s->sink)) {
        snprintf(s->err, sizeof(s->err), "producer hit a fatal error (%s)", fatal);
        end = stream_eos_end(s, EOS_FENCED);
    }
    if (!eos_open(s->eos))
        return end;
    if (end == STREAM_STOP && !s->in_txn && stream_eos_close(s, true, &end))
        return STREAM_STOP;
    eos_abort(s->eos);
    return end == STREAM_RETRY ? STREAM_REWIND : end;
}

/* --end-lsn via the server's position: everything before wal_end has been
 * received and, the tracker being idle, delivered. */
static bool end_position_reached(struct stream *s, uint64_t wal_end, enum stream_end *end)
{
    if (s->cfg->end_lsn == 0 || wal_end < s->cfg->end_lsn)
        return false;
    log_info("reached end position " LSN_FMT, LSN_ARGS(s->cfg->end_lsn));
    s->end_reached = true;
    *end = STREAM_STOP;
    return true;
}

static bool handle_keepalive(struct stream *s, const struct replmsg *m, enum stream_end *end)
{
    uint64_t wal_end = m->wal_pos;

    if (wal_end > s->server_wal_end)
        s->server_wal_end = wal_end;
    if (m->reply_requested) {
        int64_t now = s->clock->mono_us();

        s->fb.reply_requested = true;
        /* A server shutting down (WalSndDone) asks again after every reply
         * until the client confirms everything it sent. With events still
         * undelivered (or a --replay-window holding the position back) the
         * relay cannot, so answering would only flood it and hold up the
         * shutdown: close the stream instead and come back when the server
         * does. An idle relay confirms at the first request, so no burst. */
        if (now - s->reply_burst_start_us > 1000000) {
            s->reply_burst_start_us = now;
            s->reply_burst = 0;
        }
        if (++s->reply_burst > 20) {
            log_warn("server keeps asking for a confirmation of " LSN_FMT " that needs undelivered "
                     "events (shutting down?); closing the stream",
                     LSN_ARGS(wal_end));
            *end = STREAM_RETRY;
            return false;
        }
    }
    if (s->in_txn)
        return true;
    tracker_note_server_position(s->tracker, wal_end);
    if (wal_end > s->write_lsn)
        s->write_lsn = wal_end;
    if (!tracker_idle(s->tracker)) {
        /* Confirmable once what is in flight is delivered (R3). */
        confirm_hold_keepalive(&s->confirm, wal_end);
        return true;
    }
    return !end_position_reached(s, wal_end, end);
}

enum stream_end stream_check_kafka(struct stream *s)
{
    char fatal[512];

    if (s->fatal)
        return STREAM_FATAL;
    if (s->sink_ops->fatal(s->sink, fatal, sizeof(fatal))) {
        if (s->eos != NULL) {
            if (!s->sink_ops->fenced(s->sink))
                return eos_fatal_rewind(s, fatal);
            snprintf(s->err, sizeof(s->err), "producer hit a fatal error (%s)", fatal);
            return stream_eos_end(s, EOS_FENCED);
        }
        log_warn("producer hit a fatal error (%s); rewinding with a new producer", fatal);
        return STREAM_REWIND;
    }
    if (s->rewind)
        return STREAM_REWIND;
    return STREAM_STOP; /* no trouble */
}

/* --heartbeat-interval: one beat per interval, never blocking the loop;
 * a failing heartbeat is logged, not fatal. */
static void heartbeat(struct stream *s)
{
    int64_t now = s->clock->mono_us();

    if (s->watch == NULL || s->cfg->heartbeat_interval_ms <= 0)
        return;
    if (now >= s->next_heartbeat_us) {
        s->next_heartbeat_us = now + (int64_t)s->cfg->heartbeat_interval_ms * 1000;
        s->watch_ops->beat(s->watch);
    }
    if (s->watch_ops->beat_progress(s->watch, s->err, sizeof(s->err)) != REPL_OK)
        log_warn("%s", s->err);
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
static bool publication_verified(struct stream *s, uint64_t safe)
{
    int64_t now = s->clock->mono_us();

    if (s->cfg->source_messages || s->watch == NULL)
        return true;
    if (!s->check_running) {
        if (!confirm_pub_check_due(&s->confirm, safe, now, s->fb.interval_us))
            return true;
        s->check_covers = confirm_pub_check_started(&s->confirm, safe, s->write_lsn, now);
        s->watch_ops->check_start(s->watch);
        s->check_running = true;
    }
    switch (s->watch_ops->check_result(s->watch, s->err, sizeof(s->err))) {
    case RELAY_CHECK_RUNNING:
        return true;
    case RELAY_CHECK_PASSED:
        s->check_running = false;
        confirm_pub_verified(&s->confirm, s->check_covers);
        return true;
    case RELAY_CHECK_GONE:
        s->check_running = false;
        log_error("%s", s->err);
        return false;
    case RELAY_CHECK_FAILED:
        break;
    }
    s->check_running = false;
    log_warn("%s; not confirming past " LSN_FMT " until it succeeds", s->err,
             LSN_ARGS(s->confirm.pub_verified));
    return true;
}

/* One message of the stream. */
static bool handle_message(struct stream *s, const struct replmsg *m, enum stream_end *end)
{
    if (m->kind == REPLMSG_XLOGDATA)
        return stream_handle_xlogdata(s, m, end);
    return handle_keepalive(s, m, end);
}

static enum stream_end stream(struct stream *s)
{
    const struct relay_common_config *common = s->common;
    enum stream_end end = STREAM_STOP;

    s->last_server_msg_us = s->clock->mono_us();
    s->probe_sent = false;
    for (;;) {
        int n = 0;
        int64_t wait_us;
        uint64_t safe;
        struct pollfd pfd[5];
        int npfd = 0;
        bool heard = false;

        if (stream_should_stop(s))
            return STREAM_STOP;
        for (int budget = 0; budget < STREAM_RECV_BUDGET; budget++) {
            struct replmsg m;

            n = s->src_ops->recv(s->src, &m, s->err, sizeof(s->err));
            if (n == 0)
                break;
            if (n < 0) {
                if (n == REPL_EFATAL) {
                    log_error("%s", s->err);
                    return STREAM_FATAL;
                }
                log_warn("%s", s->err);
                return STREAM_RETRY;
            }
            if (!handle_message(s, &m, &end))
                return end;
            heard = true;
        }
        if (heard) {
            /* Once per batch, not per message: the server is alive. */
            s->last_server_msg_us = s->clock->mono_us();
            s->probe_sent = false;
        }
        s->sink_ops->poll(s->sink, 0);
        if ((end = stream_check_kafka(s)) != STREAM_STOP)
            return end;
        if (!stream_eos_close(s, false, &end))
            return end;
        if (s->confirm.held_keepalive != 0 && !s->in_txn) {
            uint64_t pending = s->confirm.held_keepalive;

            tracker_note_server_position(s->tracker, pending);
            if (tracker_idle(s->tracker)) {
                confirm_drop_keepalive(&s->confirm);
                if (end_position_reached(s, pending, &end))
                    return end;
            }
        }
        safe = tracker_safe_lsn(s->tracker);
        if (s->end_reached)
            return STREAM_STOP;
        if (!publication_verified(s, safe))
            return STREAM_FATAL;
        if (feedback_due(&s->fb, safe, s->clock->mono_us()) && !send_status(s, false))
            return STREAM_RETRY;

        /* R8: a server that stopped talking is probed once, then dropped. */
        {
            int64_t silent_ms = (s->clock->mono_us() - s->last_server_msg_us) / 1000;
            if (silent_ms > common->server_timeout_ms) {
                log_warn("no message from the server for %lld ms; reconnecting",
                         (long long)silent_ms);
                return STREAM_RETRY;
            }
            if (silent_ms > common->server_timeout_ms / 2 && !s->probe_sent) {
                s->probe_sent = true;
                if (!send_status(s, true))
                    return STREAM_RETRY;
            }
        }
        heartbeat(s);
        stream_observe(s, false);
        if (n > 0)
            continue; /* budget used up with more buffered: go round again */

        wait_us = feedback_wait_us(&s->fb, safe, s->clock->mono_us());
        if (wait_us > 1000000)
            wait_us = 1000000;
        if (s->eos != NULL && eos_wait_us(s->eos, s->clock->mono_us()) < wait_us)
            wait_us = eos_wait_us(s->eos, s->clock->mono_us());
        pfd[npfd++] = (struct pollfd){.fd = s->src_ops->socket(s->src), .events = POLLIN};
        pfd[npfd++] = (struct pollfd){.fd = s->sink_ops->wakeup_fd(s->sink), .events = POLLIN};
        /* Once seen, the stop request is the flag's business; a still-readable
         * pipe would only spin this poll. */
        if (common->stop.fd >= 0 && !*common->stop.flag)
            pfd[npfd++] = (struct pollfd){.fd = common->stop.fd, .events = POLLIN};
        /* the side connections: their answers are read on the next turn */
        if (s->watch != NULL)
            npfd += s->watch_ops->pollfds(s->watch, &pfd[npfd], 2);
        if (poll(pfd, (nfds_t)npfd, (int)((wait_us + 999) / 1000)) < 0 && errno != EINTR) {
            log_error("poll: %s", strerror(errno));
            return STREAM_FATAL;
        }
        if (pfd[0].revents != 0 && s->src_ops->consume(s->src, s->err, sizeof(s->err)) != REPL_OK) {
            log_warn("%s", s->err);
            return STREAM_RETRY;
        }
    }
}

enum stream_end stream_run(struct stream *s)
{
    return eos_stream_end(s, stream(s));
}

/*
 * A clean stop confirms everything delivered, so whoever reads the slot next
 * (a restart without the state file, the standby of a pair) sends nothing
 * again: the publication check that lets it be confirmed runs now rather
 * than at its interval. Bounded (STREAM_STOP_CHECK_POLLS); a check that
 * fails or does not end leaves the confirmed position where it was:
 * duplicates at the next start, never a loss.
 */
static void publication_check_before_stop(struct stream *s)
{
    uint64_t safe = tracker_safe_lsn(s->tracker);

    if (s->cfg->source_messages || s->watch == NULL || s->src == NULL)
        return;
    for (int i = 0; i < STREAM_STOP_CHECK_POLLS && safe > s->confirm.pub_verified; i++) {
        struct pollfd pfd[4];
        int n;

        if (!s->check_running) {
            s->check_covers =
                confirm_pub_check_started(&s->confirm, safe, s->write_lsn, s->clock->mono_us());
            s->watch_ops->check_start(s->watch);
            s->check_running = true;
        }
        switch (s->watch_ops->check_result(s->watch, s->err, sizeof(s->err))) {
        case RELAY_CHECK_RUNNING:
            break;
        case RELAY_CHECK_PASSED:
            s->check_running = false;
            confirm_pub_verified(&s->confirm, s->check_covers);
            continue;
        case RELAY_CHECK_GONE:
            s->check_running = false;
            log_error("%s", s->err);
            return;
        case RELAY_CHECK_FAILED:
            s->check_running = false;
            log_warn("%s; confirming only up to " LSN_FMT, s->err,
                     LSN_ARGS(s->confirm.pub_verified));
            return;
        }
        n = s->watch_ops->pollfds(s->watch, pfd, 4);
        (void)poll(pfd, (nfds_t)n, STREAM_STOP_CHECK_POLL_MS);
    }
}

bool stream_drain(struct stream *s)
{
    int64_t budget_ms = s->common->shutdown_timeout_ms;
    bool complete = true;

    if (s->stop_deadline_us != 0) {
        budget_ms = (s->stop_deadline_us - s->clock->mono_us()) / 1000;
        if (budget_ms < 0)
            budget_ms = 0;
    }
    if (s->sink != NULL) {
        int left = s->sink_ops->flush(s->sink, (int)budget_ms);
        if (left > 0) {
            log_warn("%d events still undelivered after %lld ms; they will be sent again on the "
                     "next start",
                     left, (long long)budget_ms);
            complete = false;
        }
    }
    (void)tracker_safe_lsn(s->tracker); /* pops what was delivered, so idle is accurate */
    if (s->fatal || s->rewind || tracker_failed(s->tracker) || !tracker_idle(s->tracker))
        complete = false;
    publication_check_before_stop(s);
    if (s->src != NULL && send_status(s, false))
        log_info("confirmed position " LSN_FMT, LSN_ARGS(tracker_safe_lsn(s->tracker)));
    return complete;
}
