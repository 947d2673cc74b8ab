/*
 * The messages of a transaction (docs/protocol.md#pgoutput-messages): Begin
 * opens it in the tracker (or skips a re-sent copy), Relation keeps the
 * outbox table's layout, Insert and outbox Messages become events produced
 * under the transaction's sequence number, Commit closes it with its end
 * LSN. Also the stream-level checks the built-in apply worker makes.
 */
#include "stream.h"

#include <stdio.h>
#include <string.h>

#include "eos.h"
#include "log.h"
#include "outbox_message.h"
#include "pgtime.h"
#include "reemit.h"
#include "relcache.h"
#include "tracker.h"
#include "xmem.h"

/* stream_keep_alive while the producer's queue is full, for shell_produce. */
struct queue_wait {
    struct stream *s;
    enum stream_end *end;
};

static bool wait_for_queue(void *arg)
{
    struct queue_wait *qw = arg;

    return stream_keep_alive(qw->s, 100, qw->end);
}

/*
 * Sends an event that can never become its own message to the
 * dead-letter topic, under the transaction's seq so that its acknowledgement
 * is the event's delivery (the position does not pass it before). why is
 * copied; meta NULL: the transaction's. Returns false (end set, logged) when
 * even that is impossible.
 */
static bool dead_letter(struct stream *s, const struct outbox_event *ev,
                        const struct sink_meta *metap, const char *topic, const char *why,
                        bool drop_value, enum stream_end *end)
{
    struct sink_meta meta = {.lsn = s->txn_lsn, .commit_ts = s->txn_ts};
    char reason[512];
    struct sink_dead_letter dl = {
        .original_topic = topic, .error = reason, .drop_value = drop_value};
    struct queue_wait qw = {s, end};
    enum sink_status st;

    if (metap != NULL)
        meta = *metap;
    snprintf(reason, sizeof(reason), "%s", why);
    log_event(LOG_LEVEL_WARN, s->txn_commit_lsn, ev->id.ptr ? ev->id.ptr : "?",
              ev->id.ptr ? (int)ev->id.len : -1, "sending event to dead-letter topic %s: %s",
              s->cfg->dead_letter_topic, reason);
    st = shell_produce(s->sink_ops, s->sink, NULL, ev, &meta, &dl, s->txn_seq, wait_for_queue, &qw,
                       s->err, sizeof(s->err));
    if (st == SINK_QUEUE_FULL)
        return false; /* the wait ended the stream (*end set) */
    if (st != SINK_OK) {
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, ev->id.ptr ? ev->id.ptr : "?",
                  ev->id.ptr ? (int)ev->id.len : -1,
                  "cannot send event to the dead-letter topic: %s; stopping without confirming it",
                  s->err);
        *end = st == SINK_EFATAL ? STREAM_REWIND : STREAM_FATAL;
        return false;
    }
    tracker_add_event(s->tracker, s->txn_seq);
    s->stats.produced++;
    return true;
}

static bool handle_insert(struct stream *s, enum stream_end *end)
{
    const struct pgout_msg *m = s->msg;
    struct outbox_event ev;
    enum outbox_status ost;

    memset(&ev, 0, sizeof(ev)); /* the error path below may log a field never set */
    if (relcache_get(s->relcache, m->u.insert.relid) == NULL) {
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, NULL, -1,
                  "protocol error: insert for relation %u before its Relation message",
                  m->u.insert.relid);
        *end = STREAM_FATAL;
        return false;
    }
    if (!s->have_layout || m->u.insert.relid != s->layout.relid || s->skip_txn)
        return true;
    if (!s->in_txn) {
        log_error("protocol error: insert outside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    ost = outbox_event_from_tuple(&s->layout, &m->u.insert.newtup, &ev);
    if (ost == OUTBOX_OK) {
        size_t need = outbox_event_decode_size(&s->layout, &ev);

        if (need > s->scratch_cap) {
            s->scratch = xrealloc(s->scratch, need);
            s->scratch_cap = need;
        }
        ost = outbox_event_decode(&s->layout, &ev, s->scratch, s->scratch_cap);
    }
    if (ost == OUTBOX_ENULL && s->cfg->dead_letter_topic != NULL) {
        char why[160];

        s->stats.received++;
        snprintf(why, sizeof(why), "bad outbox row: %s", outbox_strerror(ost));
        return dead_letter(s, &ev, NULL, NULL, why, false, end);
    }
    if (ost != OUTBOX_OK) {
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, ev.id.ptr ? ev.id.ptr : "?",
                  ev.id.ptr ? (int)ev.id.len : -1,
                  "bad outbox row: %s; stopping without confirming it", outbox_strerror(ost));
        *end = STREAM_FATAL;
        return false;
    }
    return stream_produce_event(s, &ev, NULL, end);
}

/* Message mode: a transactional pg_logical_emit_message with the outbox
 * prefix is one event, committed with the transaction around it. */
static bool handle_outbox_message(struct stream *s, enum stream_end *end)
{
    const struct pgout_msg *m = s->msg;
    struct outbox_message om;
    const char *why = NULL;
    bool ok;

    if (!(m->u.message.flags & 1)) {
        log_event(LOG_LEVEL_WARN, m->u.message.lsn, NULL, -1,
                  "non-transactional message with prefix \"%s\" ignored: an outbox event must "
                  "be emitted with pg_logical_emit_message(true, ...) so it commits with its "
                  "transaction",
                  s->cfg->message_prefix);
        return true;
    }
    if (!s->in_txn) {
        log_error("protocol error: transactional message outside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    if (s->skip_txn)
        return true;
    if (!outbox_message_parse(m->u.message.content, m->u.message.len, &om, &why)) {
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, NULL, -1,
                  "bad outbox message: %s; stopping without confirming it", why);
        *end = STREAM_FATAL;
        return false;
    }
    ok = stream_produce_event(s, &om.ev, NULL, end);
    outbox_message_free(&om);
    return ok;
}

bool stream_produce_event(struct stream *s, const struct outbox_event *evp,
                          const struct sink_meta *metap, enum stream_end *end)
{
    const struct outbox_event ev = *evp;
    char topic[256];
    struct sink_meta meta = {.lsn = s->txn_lsn, .commit_ts = s->txn_ts};
    struct queue_wait qw = {s, end};
    enum sink_status st;

    if (metap != NULL)
        meta = *metap;
    s->stats.received++;
    memset(topic, 0, sizeof(topic)); /* a name too long is left unterminated */
    if (!outbox_topic(s->common->topic_template, &ev, topic, sizeof(topic))) {
        char why[512];

        shell_bad_topic(why, sizeof(why), &ev, s->common->topic_template);
        if (s->cfg->dead_letter_topic != NULL) {
            topic[sizeof(topic) - 1] = '\0';
            return dead_letter(s, &ev, &meta, topic, why, false, end);
        }
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, ev.id.ptr, (int)ev.id.len,
                  "outbox event: %s; stopping without confirming it", why);
        *end = STREAM_FATAL;
        return false;
    }
    if (s->eos != NULL) {
        enum eos_result res = eos_before_produce(s->eos, s->tracker, s->txn_seq,
                                                 s->clock->mono_us(), s->err, sizeof(s->err));
        if (res != EOS_OK) {
            *end = stream_eos_end(s, res);
            return false;
        }
    }
    st = shell_produce(s->sink_ops, s->sink, topic, &ev, &meta, NULL, s->txn_seq, wait_for_queue,
                       &qw, s->err, sizeof(s->err));
    if (st == SINK_QUEUE_FULL)
        return false; /* the wait ended the stream (*end set) */
    if ((st == SINK_EPERMANENT || st == SINK_ETOOLARGE) && s->cfg->dead_letter_topic != NULL) {
        char why[512];

        snprintf(why, sizeof(why), "cannot produce event to topic %.255s: %.200s", topic, s->err);
        return dead_letter(s, &ev, &meta, topic, why, st == SINK_ETOOLARGE, end);
    }
    if (st != SINK_OK) {
        s->stats.failed++;
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, ev.id.ptr, (int)ev.id.len,
                  "cannot produce event to topic %.255s: %.200s", topic, s->err);
        *end = st == SINK_EFATAL ? STREAM_REWIND : STREAM_FATAL;
        return false;
    }
    tracker_add_event(s->tracker, s->txn_seq);
    s->stats.produced++;
    if (log_threshold >= LOG_LEVEL_DEBUG)
        log_event(LOG_LEVEL_DEBUG, s->txn_commit_lsn, ev.id.ptr, (int)ev.id.len,
                  "event produced topic=%s", topic);
    return true;
}

static bool handle_relation(struct stream *s, enum stream_end *end)
{
    const struct relcache_rel *rel = relcache_put(s->relcache, s->msg);
    const char *missing = NULL;

    if (strcmp(rel->nspname, s->common->table_schema) != 0 ||
        strcmp(rel->relname, s->common->table_name) != 0) {
        if (s->have_layout && rel->relid == s->layout.relid)
            s->have_layout = false; /* renamed away from the outbox name */
        return true;
    }
    if (outbox_layout_init(&s->layout, s->common->columns, rel, &missing) != OUTBOX_OK) {
        const struct outbox_columns *c = s->common->columns;

        log_error("table %s.%s has no column \"%s\"; the outbox needs the columns %s, %s, %s, "
                  "%s and %s (--id-column, --route-column, --key-column, --type-column, "
                  "--payload-column), and every --header-columns one",
                  rel->nspname, rel->relname, missing, c->role[OUTBOX_COL_ID],
                  c->role[OUTBOX_COL_AGGREGATE_TYPE], c->role[OUTBOX_COL_AGGREGATE_ID],
                  c->role[OUTBOX_COL_EVENT_TYPE], c->role[OUTBOX_COL_PAYLOAD]);
        *end = STREAM_FATAL;
        return false;
    }
    if (!s->traceparent_told && s->common->columns->traceparent != NULL) {
        if (s->layout.traceparent >= 0)
            log_info("trace context: column \"%s\" of %s.%s becomes the traceparent header",
                     s->common->columns->traceparent, rel->nspname, rel->relname);
        else
            log_info("trace context: table %s.%s has no column \"%s\"; events carry no "
                     "traceparent header (sql/0005_outbox_traceparent.sql adds it)",
                     rel->nspname, rel->relname, s->common->columns->traceparent);
        s->traceparent_told = true;
    }
    s->have_layout = true;
    return true;
}

static bool handle_begin(struct stream *s, enum stream_end *end)
{
    const struct pgout_msg *m = s->msg;
    uint64_t final_lsn = m->u.begin.final_lsn;

    if (s->in_txn) {
        log_event(LOG_LEVEL_ERROR, final_lsn, NULL, -1,
                  "protocol error: Begin inside a transaction");
        *end = STREAM_FATAL;
        return false;
    }
    if (s->cfg->end_lsn != 0 && final_lsn > s->cfg->end_lsn) {
        log_info("reached end position " LSN_FMT ": next transaction commits at " LSN_FMT,
                 LSN_ARGS(s->cfg->end_lsn), LSN_ARGS(final_lsn));
        s->end_reached = true;
        *end = STREAM_STOP;
        return false;
    }
    s->in_txn = true;
    s->txn_commit_lsn = final_lsn;
    confirm_drop_keepalive(&s->confirm); /* this transaction's commit will supersede it */
    /* A transaction that commits before what was already produced is a
     * re-sent copy (reconnect, or a slot that moved back after a server
     * crash); one before --start-lsn was excluded by the operator. */
    s->skip_txn = final_lsn < tracker_last_end_lsn(s->tracker) ||
                  (s->cfg->start_lsn != 0 && final_lsn < s->cfg->start_lsn);
    if (s->skip_txn) {
        if (log_threshold >= LOG_LEVEL_DEBUG)
            log_event(LOG_LEVEL_DEBUG, final_lsn, NULL, -1, "skipping transaction");
        return true;
    }
    s->txn_seq = tracker_begin(s->tracker);
    *tracker_times(s->tracker, s->txn_seq) = (struct latency_times){
        .commit_us = pgtime_to_unix_us(m->u.begin.commit_time),
        .sent_us = s->xlog_sent_us,
        .received_us = s->clock->wall_us(),
    };
    lsn_format(final_lsn, s->txn_lsn, sizeof(s->txn_lsn));
    outbox_format_timestamp(m->u.begin.commit_time, s->txn_ts, sizeof(s->txn_ts));
    return true;
}

static bool handle_commit(struct stream *s, enum stream_end *end)
{
    const struct pgout_msg *m = s->msg;

    if (!s->in_txn || m->u.commit.commit_lsn != s->txn_commit_lsn) {
        log_event(LOG_LEVEL_ERROR, m->u.commit.commit_lsn, NULL, -1,
                  "protocol error: Commit does not match Begin at " LSN_FMT,
                  LSN_ARGS(s->txn_commit_lsn));
        *end = STREAM_FATAL;
        return false;
    }
    s->in_txn = false;
    if (m->u.commit.end_lsn > s->write_lsn)
        s->write_lsn = m->u.commit.end_lsn;
    if (s->skip_txn)
        return true;
    if (!tracker_commit(s->tracker, s->txn_seq, m->u.commit.end_lsn)) {
        log_event(LOG_LEVEL_ERROR, s->txn_commit_lsn, NULL, -1,
                  "protocol error: commit end " LSN_FMT " is not after the previous one",
                  LSN_ARGS(m->u.commit.end_lsn));
        *end = STREAM_FATAL;
        return false;
    }
    tracker_times(s->tracker, s->txn_seq)->produced_us = s->clock->wall_us();
    stream_observe_delivered(s, s->txn_seq); /* its reports may all be in already */
    if (!stream_eos_close(s, false, end))
        return false;
    if (stream_should_stop(s)) {
        *end = STREAM_STOP;
        return false;
    }
    return true;
}

bool stream_handle_xlogdata(struct stream *s, const struct replmsg *m, enum stream_end *end)
{
    enum pgout_status st;

    /* the walsender's clock when it sent this (docs/protocol.md#the-copyboth-envelope) */
    s->xlog_sent_us = pgtime_to_unix_us(m->send_time);
    st = pgout_decode(m->data, m->len, 1, s->msg);
    if (st != PGOUT_OK) {
        log_event(LOG_LEVEL_ERROR, m->wal_pos, NULL, -1,
                  "protocol error: cannot decode pgoutput message '%c': %s",
                  m->len > 0 ? m->data[0] : '?', pgout_strerror(st));
        *end = STREAM_FATAL;
        return false;
    }
    switch (s->msg->tag) {
    case PGOUT_MSG_BEGIN:
        return handle_begin(s, end);
    case PGOUT_MSG_COMMIT:
        return handle_commit(s, end);
    case PGOUT_MSG_RELATION:
        return handle_relation(s, end);
    case PGOUT_MSG_INSERT:
        return handle_insert(s, end);
    case PGOUT_MSG_MESSAGE:
        if (s->msg->u.message.prefix.len == strlen(REEMIT_PREFIX) &&
            memcmp(s->msg->u.message.prefix.ptr, REEMIT_PREFIX, strlen(REEMIT_PREFIX)) == 0)
            return stream_handle_reemit(s, end);
        if (s->cfg->source_messages &&
            s->msg->u.message.prefix.len == strlen(s->cfg->message_prefix) &&
            memcmp(s->msg->u.message.prefix.ptr, s->cfg->message_prefix,
                   s->msg->u.message.prefix.len) == 0)
            return handle_outbox_message(s, end);
        /* A non-transactional message has been fully received: its position
         * is as safe to confirm as a keepalive's (R3). */
        if (!s->in_txn && !(s->msg->u.message.flags & 1))
            tracker_note_server_position(s->tracker, s->msg->u.message.lsn);
        return true;
    default:
        /* Type, Origin, Update, Delete, Truncate: nothing to publish. */
        return true;
    }
}
