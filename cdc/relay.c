/*
 * The relay around its stream loop (cdc/stream.c): makes the producer,
 * connects the replication slot, decides where each stream starts
 * (cdc/resume.c) and what to do when one ends: drain and stop, reconnect
 * keeping the producer, or rewind with a new one. Logs every decision.
 */
#include "relay.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "eos.h"
#include "log.h"
#include "lsn.h"
#include "notify.h"
#include "pace.h"
#include "repl.h"
#include "resume.h"
#include "state.h"
#include "stream.h"
#include "tracker.h"
#include "watch.h"

/* Earlier walsenders of this process remembered (each reconnect adds one). */
#define RELAY_OWN_WALSENDERS 8
/* How long a slot held by a session that is not this process's may stay so
 * before the relay gives up (RELAY_EXIT_TEMPORARY): a killed relay's
 * walsender lingers until it notices the closed socket. */
#define RELAY_BUSY_GIVE_UP_US INT64_C(15000000)
/* --standby: how often a waiting relay looks at the slot again. A dead
 * relay's walsender frees it within moments of the closed socket, so this
 * bounds the takeover time; each look is one short connection. */
#define RELAY_STANDBY_POLL_MS 1000

struct relay {
    struct stream s; /* the loop's state; s.src is rc while it is open */
    const struct relay_stream_config *cfg;
    struct sink *sink; /* s.sink */
    struct repl_conn *rc;
    struct repl_opts opts;
    uint64_t eos_checkpoint; /* read at the last eos_attach */

    /* Walsenders of the replication connections this process opened, newest
     * last (a ring): one still holding the slot after a reconnect is this
     * relay's own, and is ended rather than waited for. */
    struct repl_walsender own[RELAY_OWN_WALSENDERS];
    size_t nown;
    /* The slot was created by this run's first connection and not streamed
     * from yet: a refused start drops it again. */
    bool slot_created_unused;

    struct watch *watch;
    struct reemit_source reemit; /* s.reemit: the table read for re-emit requests */
    char app_name[48];
    bool first;               /* no stream started yet in this run */
    bool streamed_once;       /* START_REPLICATION succeeded at least once */
    int64_t standby_since_us; /* --standby: waiting for the slot since */
    int backoff_ms;
    int64_t busy_since_us;  /* the slot busy (not by us) since; 0: not busy */
    int own_holder_logged;  /* pid of our own walsender last logged as holding the slot */
    enum relay_exit result; /* when the run ends */
};

/* Closes the replication connection without the polite end. */
static void drop_connection(struct relay *r)
{
    repl_abort(r->rc);
    r->rc = NULL;
    r->s.src = NULL;
}

/* The stop path: drain, confirm, end the stream politely. Returns true
 * when everything produced was delivered. */
static bool drain_and_confirm(struct relay *r)
{
    bool complete;

    r->s.src = r->rc;
    complete = stream_drain(&r->s);
    if (r->rc != NULL)
        repl_close(r->rc, 2000);
    r->rc = NULL;
    r->s.src = NULL;
    return complete;
}

/* systemd (Type=notify): the relay can do its work once it streams; READY=1
 * the first time, the status every time. */
static void notify_ready_streaming(const struct relay_stream_config *cfg)
{
    char status[256];

    snprintf(status, sizeof(status), "streaming slot %s", cfg->slot);
    notify_ready(status);
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

/* What a refused start logs, with the data it was decided on. st: the
 * state file's contents (first start); pos: the delivered position
 * (reconnect) or the checkpoint (RESUME_CHECKPOINT_PAST_SERVER). */
static void log_refusal(const struct relay *r, enum resume_reason why,
                        const struct repl_slot_info *info, const struct relay_state *st,
                        uint64_t pos)
{
    const struct relay_stream_config *cfg = r->cfg;

    switch (why) {
    case RESUME_OK:
        break;
    case RESUME_STATE_OTHER_SLOT:
        log_error("state file %s belongs to slot \"%s\", not \"%s\": use another --state-file",
                  cfg->state_file, st->slot, cfg->slot);
        break;
    case RESUME_STATE_OTHER_CLUSTER:
        log_error("state file %s was written against another cluster (system identifier %s, "
                  "this server is %s): a failover or restore; the slot here has not followed "
                  "the relay's history. Check for a gap, then delete the state file to start over",
                  cfg->state_file, st->systemid, info->systemid);
        break;
    case RESUME_SLOT_DROPPED:
        log_error(
            "slot \"%s\" did not exist, but state file %s says this relay delivered up to " LSN_FMT
            " from it: the slot was dropped, and transactions committed between "
            "then and " LSN_FMT " were never relayed. Replay them from the outbox table, "
            "then delete the state file to start over",
            cfg->slot, cfg->state_file, LSN_ARGS(st->lsn), LSN_ARGS(info->confirmed_flush));
        break;
    case RESUME_SLOT_PAST_STATE:
        log_error("slot \"%s\" has confirmed_flush_lsn " LSN_FMT
                  ", ahead of the position this relay saved as delivered (" LSN_FMT
                  "): the slot was recreated or advanced by someone else, so transactions in "
                  "between may never have reached Kafka. Check, then delete %s to start over",
                  cfg->slot, LSN_ARGS(info->confirmed_flush), LSN_ARGS(st->lsn), cfg->state_file);
        break;
    case RESUME_STATE_PAST_SERVER:
        log_error("state file %s says " LSN_FMT
                  " was delivered, beyond the server's WAL end " LSN_FMT
                  ": the server was restored to an earlier point. Check, then delete the state "
                  "file to start over",
                  cfg->state_file, LSN_ARGS(st->lsn), LSN_ARGS(info->server_wal_end));
        break;
    case RESUME_START_PAST_SERVER:
        log_error("--start-lsn " LSN_FMT " is beyond the server's current WAL position " LSN_FMT
                  ": confirming it would skip every transaction until then",
                  LSN_ARGS(cfg->start_lsn), LSN_ARGS(info->server_wal_end));
        break;
    case RESUME_START_BEFORE_SLOT:
        log_error("--start-lsn " LSN_FMT " is older than slot \"%s\"'s confirmed_flush_lsn " LSN_FMT
                  ": the server no longer has those transactions for this slot",
                  LSN_ARGS(cfg->start_lsn), cfg->slot, LSN_ARGS(info->confirmed_flush));
        break;
    case RESUME_CHECKPOINT_PAST_SERVER:
        log_error("checkpoint topic %s says " LSN_FMT " was committed, beyond the server's WAL "
                  "end " LSN_FMT ": the server was restored to an earlier point. Check, then use "
                  "another --checkpoint-topic",
                  cfg->checkpoint_topic, LSN_ARGS(pos), LSN_ARGS(info->server_wal_end));
        break;
    case RESUME_OTHER_CLUSTER:
        log_error("the server is another cluster now (system identifier %s, was %s): a failover "
                  "or restore; slot \"%s\" there has not followed this relay's history, so "
                  "events may be missing; check, then restart the relay",
                  info->systemid, r->s.systemid, cfg->slot);
        break;
    case RESUME_SLOT_PAST_DELIVERED:
        log_error("slot \"%s\" has confirmed_flush_lsn " LSN_FMT
                  ", ahead of the last position this relay delivered (" LSN_FMT
                  "): something else advanced or recreated it, and the transactions in between "
                  "may never have reached Kafka",
                  cfg->slot, LSN_ARGS(info->confirmed_flush), LSN_ARGS(pos));
        break;
    }
}

static struct resume_slot resume_slot_of(const struct repl_slot_info *info)
{
    return (struct resume_slot){
        .created = info->created,
        .confirmed_flush = info->confirmed_flush,
        .server_wal_end = info->server_wal_end,
        .systemid = info->systemid,
    };
}

/*
 * Where the first connection of a run starts (resume_first_start), after
 * loading the state file. Logs the decision; returns false for a refusal.
 */
static bool first_start_position(struct relay *r, const struct repl_slot_info *info,
                                 uint64_t *start)
{
    const struct relay_stream_config *cfg = r->cfg;
    struct relay_state st;
    struct resume_first in = {
        .slot = cfg->slot,
        .state_file = cfg->state_file != NULL,
        .start_lsn = cfg->start_lsn,
        .checkpoint = r->s.eos != NULL ? r->eos_checkpoint : 0,
        .standby = cfg->standby,
    };
    struct resume_slot slot = resume_slot_of(info);
    struct resume_plan plan;
    enum resume_reason why;

    if (cfg->state_file != NULL) {
        int found = state_load(cfg->state_file, &st, r->s.err, sizeof(r->s.err));

        if (found < 0) {
            log_error("%s", r->s.err);
            return false;
        }
        if (found == 1)
            in.state = &st;
    }
    why = resume_first_start(&in, &slot, &plan);
    if (in.state != NULL && st.timeline != 0 && st.timeline != info->timeline &&
        strcmp(st.systemid, info->systemid) == 0)
        log_info("state file %s was written on timeline %u, the server is on %u: a standby was "
                 "promoted since (same system identifier)",
                 cfg->state_file, (unsigned)st.timeline, (unsigned)info->timeline);
    if (plan.note == RESUME_NOTE_NO_STATE_YET)
        log_info("no state file %s yet: starting from slot \"%s\" at " LSN_FMT, cfg->state_file,
                 cfg->slot, LSN_ARGS(info->confirmed_flush));
    if (plan.note == RESUME_NOTE_PAIR_AHEAD)
        log_info("slot \"%s\" is at " LSN_FMT ", past this relay's saved position " LSN_FMT
                 " (state file %s): the other relay of the pair delivered up to there "
                 "(--standby); starting from the slot",
                 cfg->slot, LSN_ARGS(info->confirmed_flush), LSN_ARGS(st.lsn), cfg->state_file);
    if (plan.note == RESUME_NOTE_SAVED)
        log_info("resuming from saved position " LSN_FMT " (state file %s, slot at " LSN_FMT ")",
                 LSN_ARGS(st.lsn), cfg->state_file, LSN_ARGS(info->confirmed_flush));
    if (why != RESUME_OK) {
        log_refusal(r, why, info, &st, 0);
        return false;
    }
    confirm_start(&r->s.confirm, plan.saved, info->confirmed_flush, plan.start);
    *start = plan.start;
    return true;
}

/* What a step of relay_run asks for next. */
enum step {
    STEP_ON,    /* go on with the next step */
    STEP_RETRY, /* back to the top of the loop (after the backoff set) */
    STEP_STOP,  /* stopped while connecting: drain, exit 0 */
    STEP_OUT,   /* done: r->result says how */
};

/* A producer, unless the last one is still there. */
static enum step make_producer(struct relay *r)
{
    const struct relay_common_config *common = r->s.common;
    size_t nprops = common->nkafka_props;
    const struct sink_prop *props;

    if (r->sink != NULL)
        return STEP_ON;
    props = r->s.eos != NULL ? eos_producer_props(r->s.eos, &nprops) : common->kafka_props;
    r->sink = sink_new(common->brokers, props, nprops, stream_on_delivery, &r->s, r->s.err,
                       sizeof(r->s.err));
    if (r->sink == NULL) {
        log_error("%s", r->s.err);
        return STEP_OUT;
    }
    r->s.sink = r->sink;
    if (r->cfg->dead_letter_topic != NULL)
        sink_set_dead_letter(r->sink, r->cfg->dead_letter_topic, stream_on_dead_letter);
    return STEP_ON;
}

/*
 * PostgreSQL 17+, at the first connection: whether a promoted standby would
 * have the slot (docs/operations.md, "Failover to a standby"). A warning, or
 * with --require-failover-ready a refusal (false, logged).
 */
static bool failover_ready(struct relay *r, const struct repl_slot_info *info)
{
    const struct relay_stream_config *cfg = r->cfg;
    enum log_level level = cfg->require_failover_ready ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN;

    if (info->server_version < 170000)
        return true;
    if (!info->failover)
        log_write(level,
                  "replication slot \"%s\" has failover = false%s: a promoted standby will not "
                  "have it, and the relay stops there (docs/operations.md, \"Failover to a "
                  "standby\")",
                  cfg->slot,
                  cfg->failover_slot ? " (created so before, or by hand)"
                                     : " (--no-failover-slot)");
    else if (info->failover_gaps[0] != '\0')
        log_write(level,
                  "failover slot \"%s\": %s; a standby's copy may not survive a promotion "
                  "(docs/operations.md, \"Failover to a standby\")",
                  cfg->slot, info->failover_gaps);
    else
        return true;
    if (!cfg->require_failover_ready)
        return true;
    r->result = RELAY_EXIT_ERROR;
    return false;
}

/*
 * --standby, before this run ever streamed: the slot is held by another
 * session (the active relay of the pair). Logged once when the wait starts;
 * systemd hears READY=1 then, as a waiting standby is doing its job.
 */
static enum step standby_wait(struct relay *r)
{
    char status[256];

    r->backoff_ms = RELAY_STANDBY_POLL_MS;
    if (r->s.standby_waiting) {
        log_debug("standby: %s", r->s.err);
        return STEP_RETRY;
    }
    r->s.standby_waiting = true;
    r->standby_since_us = pace_monotonic_us();
    log_info("standby: %s; waiting for it to be free, looking every %d ms", r->s.err,
             RELAY_STANDBY_POLL_MS);
    snprintf(status, sizeof(status), "standby: waiting for slot %s", r->cfg->slot);
    notify_ready(status);
    stream_observe(&r->s, true);
    return STEP_RETRY;
}

/* repl_open and what its outcome means: a busy slot is waited for (without
 * limit when its holder is this process's own walsender, or with --standby
 * before the first stream, else for RELAY_BUSY_GIVE_UP_US), connection
 * trouble retried with backoff. */
static enum step open_slot(struct relay *r, struct repl_slot_info *info)
{
    const struct relay_common_config *common = r->s.common;
    enum repl_status st;

    r->opts.nown = r->nown;
    st = repl_open(&r->opts, &r->rc, info, r->s.err, sizeof(r->s.err));
    if (st == REPL_EBUSY && info->holder_own) {
        /* Our own walsender from a connection we gave up on (a stall longer
         * than --server-timeout): nobody else streams, so wait for it
         * without limit; it was asked to end. */
        if (r->own_holder_logged != info->holder.pid)
            log_warn("%s; retrying every second until it is gone", r->s.err);
        else
            log_debug("%s", r->s.err);
        r->own_holder_logged = info->holder.pid;
        r->busy_since_us = 0;
        r->backoff_ms = 1000;
        r->s.stats.reconnects_pg++;
        return STEP_RETRY;
    }
    if (st == REPL_EBUSY && r->cfg->standby && !r->streamed_once)
        return standby_wait(r);
    if (st == REPL_EBUSY && r->cfg->standby) {
        /* The other relay of the pair took over while this one was
         * reconnecting: the tracker and producer now lag the slot, so start
         * over as the pair's standby rather than wait here. */
        log_error("%s: the other relay of the pair took over; exit %d, to be started again as "
                  "the standby",
                  r->s.err, RELAY_EXIT_TEMPORARY);
        r->result = RELAY_EXIT_TEMPORARY;
        return STEP_OUT;
    }
    if (st == REPL_EBUSY) {
        int64_t now = pace_monotonic_us();

        if (r->busy_since_us == 0)
            r->busy_since_us = now;
        /* A killed relay's walsender lingers until it notices the closed
         * socket; give it a few seconds before calling it a second relay. */
        if (now - r->busy_since_us > RELAY_BUSY_GIVE_UP_US) {
            log_error("%s; stop the other relay or use another --slot (exit %d: a later start "
                      "may find the slot free)",
                      r->s.err, RELAY_EXIT_TEMPORARY);
            r->result = RELAY_EXIT_TEMPORARY;
            return STEP_OUT;
        }
        log_warn("%s; retrying", r->s.err);
        r->backoff_ms = 1000;
        r->s.stats.reconnects_pg++;
        return STEP_RETRY;
    }
    if (st == REPL_EFATAL && !r->first && info->timeline != 0 && info->timeline != r->s.timeline &&
        strcmp(info->systemid, r->s.systemid) == 0) {
        log_error("%s. The server is on timeline %u now, was %u: a standby was promoted, and it "
                  "has no copy of the slot (failover slots need PostgreSQL 17+ and the "
                  "settings in docs/operations.md, \"Failover to a standby\", which also has "
                  "the re-emit procedure)",
                  r->s.err, (unsigned)info->timeline, (unsigned)r->s.timeline);
        return STEP_OUT;
    }
    if (st == REPL_EFATAL) {
        log_error("%s", r->s.err);
        return STEP_OUT;
    }
    if (st == REPL_ESTOP)
        return STEP_STOP;
    if (st != REPL_OK) {
        log_warn("%s", r->s.err);
        r->backoff_ms = pace_backoff_next(r->backoff_ms, common->reconnect_max_ms);
        r->s.stats.reconnects_pg++;
        return STEP_RETRY;
    }
    r->busy_since_us = 0;
    r->own_holder_logged = 0;
    remember_own(r, &info->self);
    if (r->first)
        r->slot_created_unused = info->created;
    /* repl_open checked the table is in the publication (or message mode
     * needs no table): everything up to now is covered. */
    confirm_pub_verified(&r->s.confirm,
                         r->cfg->source_messages ? UINT64_MAX : info->server_wal_end);
    if (info->server_wal_end > r->s.server_wal_end)
        r->s.server_wal_end = info->server_wal_end;
    if (info->confirmed_flush > r->s.confirmed_lsn)
        r->s.confirmed_lsn = info->confirmed_flush; /* until our first status update */
    if (info->publication_created)
        log_info("created publication \"%s\" (for table %s.%s with publish = 'insert', "
                 "publish_via_partition_root = true when the table exists)",
                 r->cfg->publication, common->table_schema, common->table_name);
    if (info->created)
        log_info("created replication slot \"%s\" (pgoutput%s) at " LSN_FMT, r->cfg->slot,
                 info->failover ? ", failover" : "", LSN_ARGS(info->confirmed_flush));
    if (r->first && !failover_ready(r, info))
        return STEP_OUT;
    if (!r->first && info->timeline != r->s.timeline)
        log_warn("the server is on timeline %u now, was %u, with the same system identifier: a "
                 "standby was promoted; continuing from its copy of slot \"%s\"",
                 (unsigned)info->timeline, (unsigned)r->s.timeline, r->cfg->slot);
    r->s.timeline = info->timeline;
    return STEP_ON;
}

/* --exactly-once, on a new producer: fences older ones and reads the
 * checkpoint, which the server must not be behind. */
static enum step attach_checkpoint(struct relay *r, const struct repl_slot_info *info)
{
    struct resume_slot slot = resume_slot_of(info);
    enum resume_reason why;
    uint64_t checkpoint;
    enum eos_result res;

    if (r->s.eos == NULL || eos_attached(r->s.eos))
        return STEP_ON;
    res = eos_attach(r->s.eos, r->sink, info->systemid, &checkpoint, r->s.err, sizeof(r->s.err));
    if (res == EOS_RETRY) {
        log_warn("%s; retrying", r->s.err);
        drop_connection(r);
        r->backoff_ms = pace_backoff_next(r->backoff_ms, r->s.common->reconnect_max_ms);
        r->s.stats.reconnects_kafka++;
        return STEP_RETRY;
    }
    if (res != EOS_OK) {
        (void)stream_eos_end(&r->s, res);
        return STEP_OUT;
    }
    why = resume_checkpoint(checkpoint, &slot);
    if (why != RESUME_OK) {
        log_refusal(r, why, info, NULL, checkpoint);
        return STEP_OUT;
    }
    log_info("exactly-once: transactional.id %s ready; checkpoint of slot \"%s\" in %s at " LSN_FMT,
             eos_transactional_id(r->s.eos), r->cfg->slot, r->cfg->checkpoint_topic,
             LSN_ARGS(checkpoint));
    r->eos_checkpoint = checkpoint;
    return STEP_ON;
}

/* Where this stream starts (cdc/resume.c): the run's first start, or a
 * reconnect from what was delivered. */
static enum step choose_start(struct relay *r, const struct repl_slot_info *info, uint64_t *start)
{
    struct resume_slot slot = resume_slot_of(info);
    struct resume_plan plan;
    enum resume_reason why;

    if (r->first) {
        if (!first_start_position(r, info, start))
            return STEP_OUT;
        tracker_free(r->s.tracker);
        r->s.tracker = tracker_new(*start);
        snprintf(r->s.systemid, sizeof(r->s.systemid), "%s", info->systemid);
        r->first = false;
        if (r->cfg->start_lsn != 0)
            catchup_arm(&r->s.catchup); /* a replay: reported from 1 MiB on */
        /* From now on a missing slot or publication is not a first start
         * but a loss: never recreate them silently (P8). */
        r->opts.create_slot = false;
        r->opts.create_publication = false;
        return STEP_ON;
    }
    why = resume_reconnect(tracker_safe_lsn(r->s.tracker), r->s.eos != NULL ? r->eos_checkpoint : 0,
                           r->s.systemid, &slot, &plan);
    *start = plan.start;
    if (plan.new_tracker) {
        tracker_free(r->s.tracker);
        r->s.tracker = tracker_new(*start);
    }
    if (why == RESUME_SLOT_PAST_DELIVERED && r->cfg->standby) {
        log_error("slot \"%s\" has confirmed_flush_lsn " LSN_FMT
                  ", ahead of the last position this relay delivered (" LSN_FMT
                  "): the other relay of the pair took over and moved it on while this one was "
                  "reconnecting; exit %d, to be started again as the standby",
                  r->cfg->slot, LSN_ARGS(info->confirmed_flush), LSN_ARGS(*start),
                  RELAY_EXIT_TEMPORARY);
        r->result = RELAY_EXIT_TEMPORARY;
        return STEP_OUT;
    }
    if (why != RESUME_OK) {
        log_refusal(r, why, info, NULL, *start);
        return STEP_OUT;
    }
    return STEP_ON;
}

/* START_REPLICATION, then the stream's bookkeeping. */
static enum step start_streaming(struct relay *r, const struct repl_slot_info *info, uint64_t start)
{
    enum repl_status st;

    stream_reset(&r->s);
    st = repl_start(r->rc, start, r->s.err, sizeof(r->s.err));
    if (st == REPL_ESTOP)
        return STEP_STOP;
    if (st == REPL_EFATAL) {
        log_error("%s", r->s.err);
        return STEP_OUT;
    }
    if (st == REPL_EBUSY && r->cfg->standby && !r->streamed_once) {
        /* The other relay of the pair won the race for the slot: wait
         * again, and check the start position again after. */
        drop_connection(r);
        r->first = true;
        return standby_wait(r);
    }
    if (st != REPL_OK) {
        log_warn("%s", r->s.err);
        drop_connection(r);
        r->backoff_ms = st == REPL_EBUSY
                            ? 1000
                            : pace_backoff_next(r->backoff_ms, r->s.common->reconnect_max_ms);
        r->s.stats.reconnects_pg++;
        return STEP_RETRY;
    }
    r->slot_created_unused = false;
    r->streamed_once = true;
    if (r->s.standby_waiting) {
        log_info("standby: taking over slot \"%s\" after waiting %.1f s", r->cfg->slot,
                 (double)(pace_monotonic_us() - r->standby_since_us) / 1e6);
        r->s.standby_waiting = false;
    }
    log_info("streaming slot \"%s\" publication \"%s\" from " LSN_FMT " (database \"%s\")",
             r->cfg->slot, r->cfg->publication, LSN_ARGS(start), info->dbname);
    r->s.fb.last_sent_us = 0; /* answer a new server at once */
    r->s.fb.reply_requested = false;
    r->backoff_ms = 0;
    r->s.streaming = true;
    r->s.stream_start_lsn = start;
    r->s.last_server_msg_us = pace_monotonic_us(); /* as the loop starts; for /readyz */
    stream_observe(&r->s, true);
    notify_ready_streaming(r->cfg);
    return STEP_ON;
}

/* What follows a stream's end. */
static enum step after_stream(struct relay *r, enum stream_end end)
{
    r->s.streaming = false;
    if (end == STREAM_RETRY)
        r->s.stats.reconnects_pg++;
    else if (end == STREAM_REWIND)
        r->s.stats.reconnects_kafka++;
    stream_observe(&r->s, true);
    switch (end) {
    case STREAM_STOP:
        if (!drain_and_confirm(r) && r->s.end_reached) {
            /* A replay script must not take this run for complete. */
            log_error("--end-lsn reached but not every event was delivered");
            return STEP_OUT;
        }
        r->result = RELAY_EXIT_OK;
        return STEP_OUT;
    case STREAM_FATAL:
        /* Whatever was delivered is still worth confirming. */
        drain_and_confirm(r);
        return STEP_OUT;
    case STREAM_RETRY:
        /* The producer keeps its in-flight events; a half-received
         * transaction will be re-sent whole, so its partial entry must no
         * longer hold the watermark back. */
        tracker_abandon_open(r->s.tracker);
        r->s.in_txn = false;
        drop_connection(r);
        break;
    case STREAM_REWIND:
        /* New producer, stream restarted from the last delivered position:
         * per-key order holds, duplicates are possible. */
        log_warn("rewinding to " LSN_FMT " with a new producer",
                 LSN_ARGS(tracker_safe_lsn(r->s.tracker)));
        drop_connection(r);
        if (r->s.eos != NULL)
            eos_detach(r->s.eos);
        sink_free(r->sink);
        r->sink = NULL;
        r->s.sink = NULL;
        tracker_reset(r->s.tracker);
        r->s.rewind = false;
        break;
    }
    r->backoff_ms = pace_backoff_next(r->backoff_ms, r->s.common->reconnect_max_ms);
    return STEP_RETRY;
}

/* The end of a run, however it came: a slot this run created and could not
 * use is dropped again, everything is closed, the totals logged. */
static void finish(struct relay *r)
{
    const struct relay_stream_config *cfg = r->cfg;

    if (r->slot_created_unused && r->rc != NULL && r->result != RELAY_EXIT_OK) {
        /* A refused start leaves no slot of its own making to hold WAL. */
        if (repl_drop_slot(r->rc, r->s.err, sizeof(r->s.err)) == REPL_OK)
            log_info("dropped replication slot \"%s\" again: this start created it and was "
                     "refused",
                     cfg->slot);
        else
            log_error("could not drop replication slot \"%s\", created by this refused start: "
                      "%s; drop it by hand (SELECT pg_drop_replication_slot('%s')), it holds WAL",
                      cfg->slot, r->s.err, cfg->slot);
    }
    log_info("relay stopped: %llu events produced, %llu delivered, confirmed " LSN_FMT,
             (unsigned long long)r->s.stats.produced, (unsigned long long)r->s.stats.delivered,
             LSN_ARGS(tracker_safe_lsn(r->s.tracker)));
    drop_connection(r);
    watch_free(r->watch);
    if (r->s.eos != NULL)
        log_info("exactly-once: %llu Kafka transactions committed",
                 (unsigned long long)eos_commits(r->s.eos));
    eos_free(r->s.eos);
    sink_free(r->sink);
    stream_fini(&r->s);
}

/* Rows read per batch of a re-emit request's cursor. */
#define REEMIT_BATCH_ROWS 1000

static enum reemit_result serve_reemit(void *src, const struct reemit_request *req,
                                       const struct reemit_hooks *hooks, uint64_t *sent,
                                       uint64_t *skipped, char *err, size_t errlen)
{
    return reemit_serve(src, req, hooks, sent, skipped, err, errlen);
}

static const struct relay_reemit_ops reemit_ops = {serve_reemit};

/* Everything the run needs before its first connection. */
static void relay_init(struct relay *r, const struct relay_common_config *common,
                       const struct relay_stream_config *cfg)
{
    const char *failpoint = getenv("CDC_TEST_FAILPOINT");

    r->cfg = cfg;
    r->first = true;
    r->result = RELAY_EXIT_ERROR;
    stream_init(&r->s, common, cfg);
    srandom((unsigned)pace_now_us() ^ (unsigned)getpid());
    /* Which process a walsender in pg_stat_replication belongs to: the pid
     * for operators, a random part for a pid reused after a restart. */
    snprintf(r->app_name, sizeof(r->app_name), "cdc-relay/%ld.%04lx", (long)getpid(),
             (unsigned long)(random() & 0xffff));
    r->opts = (struct repl_opts){
        .dburl = common->database_url,
        .slot = cfg->slot,
        .publication = cfg->publication,
        .table_schema = common->table_schema,
        .table_name = common->table_name,
        .create_slot = cfg->create_slot,
        .create_publication = cfg->create_publication,
        .failover_slot = cfg->failover_slot,
        .proto_version = 1,
        .connect_timeout_s = common->connect_timeout_s,
        .stop_fd = common->stop.fd,
        .messages = cfg->source_messages,
        .application_name = r->app_name,
        .own = r->own,
    };
    r->s.failpoint_after_delivery =
        failpoint != NULL && strcmp(failpoint, "after-delivery-before-status") == 0;
    r->s.src_ops = &repl_source_ops;
    r->s.sink_ops = &sink_kafka_ops;
    r->watch = watch_new(&r->opts);
    r->s.watch = r->watch;
    r->s.watch_ops = &watch_ops;
    r->reemit = (struct reemit_source){
        .database_url = common->database_url,
        .connect_timeout_s = common->connect_timeout_s,
        .table_schema = common->table_schema,
        .table_name = common->table_name,
        .columns = common->columns,
        .batch_rows = REEMIT_BATCH_ROWS,
    };
    r->s.reemit = &r->reemit;
    r->s.reemit_ops = &reemit_ops;
    if (cfg->exactly_once) {
        struct eos_config ec = {
            .slot = cfg->slot,
            .checkpoint_topic = cfg->checkpoint_topic,
            .brokers = common->brokers,
            .props = common->kafka_props,
            .nprops = common->nkafka_props,
            .max_events = cfg->txn_max_events,
            .max_ms = cfg->txn_max_ms,
        };
        r->s.eos = eos_new(&ec);
    }
}

enum relay_exit relay_run(const struct relay_common_config *common,
                          const struct relay_stream_config *cfg)
{
    struct relay r = {0};
    enum step step = STEP_ON;

    relay_init(&r, common, cfg);
    stream_observe(&r.s, true);
    while (!*common->stop.flag) {
        struct repl_slot_info info;
        uint64_t start = 0;

        if ((step = make_producer(&r)) != STEP_ON)
            break;
        if (r.backoff_ms > 0) {
            if (r.s.standby_waiting)
                log_debug("standby: looking at the slot again in %d ms", r.backoff_ms);
            else
                log_info("reconnecting in %d ms", r.backoff_ms);
            pace_sleep_ms(r.backoff_ms, &common->stop);
            if (*common->stop.flag)
                break;
        }
        step = open_slot(&r, &info);
        if (step == STEP_ON)
            step = attach_checkpoint(&r, &info);
        if (step == STEP_ON)
            step = choose_start(&r, &info, &start);
        if (step == STEP_ON)
            step = start_streaming(&r, &info, start);
        if (step == STEP_ON) {
            r.s.src = r.rc;
            step = after_stream(&r, stream_run(&r.s));
        }
        if (step == STEP_STOP || step == STEP_OUT)
            break;
    }
    if (step != STEP_OUT) {
        /* Stopped while not streaming (in backoff, or while connecting). */
        drain_and_confirm(&r);
        r.result = RELAY_EXIT_OK;
    }
    finish(&r);
    return r.s.fenced ? RELAY_EXIT_FENCED : r.result;
}
