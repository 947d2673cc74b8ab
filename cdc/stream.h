/*
 * One replication stream (docs/protocol.md#the-relays-rules): receive
 * CopyData from the source, decode pgoutput, produce outbox events to the
 * sink, serve delivery reports, and answer the server with what may be
 * confirmed (cdc/confirm.c). The source, the sink and the side checks come in
 * through cdc/relay_ops.h, so the loop runs the same against libpq and
 * librdkafka (cdc/relay.c, which connects, resumes and reconnects around it)
 * as against a recorded stream (tests/unit/test_stream.c). Logs what it
 * decides.
 *
 * The struct is the loop's state, shared by cdc/stream.c (the loop),
 * cdc/stream_txn.c (the messages of a transaction), cdc/stream_reemit.c
 * (re-emit requests) and cdc/relay.c; other
 * modules use the functions only.
 */
#ifndef ORDERS_CDC_STREAM_H
#define ORDERS_CDC_STREAM_H

#include <stdbool.h>
#include <stdint.h>

#include "catchup.h"
#include "confirm.h"
#include "eos.h"
#include "feedback.h"
#include "latency.h"
#include "lsn.h"
#include "outbox.h"
#include "pgout.h"
#include "relay_config.h"
#include "relay_ops.h"
#include "shell.h"

enum stream_end {
    STREAM_STOP,   /* signal or --end-lsn: drain and exit 0 */
    STREAM_RETRY,  /* Postgres connection trouble: reconnect, keep the producer */
    STREAM_REWIND, /* Kafka trouble: new producer, restart from the safe LSN */
    STREAM_FATAL,  /* logged; exit 1 */
};

/* The loop's clocks (pace.h's by default; a test's own in unit tests). */
struct stream_clock {
    int64_t (*mono_us)(void); /* monotonic µs: every deadline and interval */
    int64_t (*wall_us)(void); /* Unix µs: status updates' send time, latency stages */
};

struct stream {
    const struct relay_common_config *common;
    const struct relay_stream_config *cfg;
    const struct stream_clock *clock;

    /* the seams (cdc/relay_ops.h); src is NULL between streams */
    void *src;
    const struct relay_source_ops *src_ops;
    void *sink; /* NULL until the relay made a producer */
    const struct relay_sink_ops *sink_ops;
    void *watch; /* NULL: no publication check, no heartbeat */
    const struct relay_watch_ops *watch_ops;
    void *reemit; /* NULL: a re-emit request for this slot stops the stream */
    const struct relay_reemit_ops *reemit_ops;
    struct eos *eos; /* --exactly-once; NULL otherwise (needs the librdkafka sink) */

    struct tracker *tracker;
    struct relcache *relcache;
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

    uint64_t write_lsn; /* furthest position received */
    int64_t last_server_msg_us;
    bool probe_sent;
    bool end_reached;
    int64_t stop_deadline_us; /* set when a stop request is first seen */
    int64_t reply_burst_start_us;
    int reply_burst;
    int64_t next_heartbeat_us;
    bool check_running;    /* a publication check was started and has no outcome yet */
    uint64_t check_covers; /* what it confirms if it passes */
    char systemid[32];     /* the cluster, for the state file */
    uint32_t timeline;     /* and its timeline (IDENTIFY_SYSTEM of the latest connection) */

    /* what status updates report (state file, replay window, publication
     * check, held keepalive position) */
    struct confirm confirm;

    /* set from delivery reports */
    bool rewind;
    bool fatal;
    bool fenced; /* --exactly-once: another relay took over */
    /* --exactly-once: rewinds for an unfenced fatal producer error since the
     * Kafka commit count was last seen to move (fatal_commits) */
    int fatal_rewinds;
    uint64_t fatal_commits;

    /* Test-only (tests/faults): CDC_TEST_FAILPOINT=after-delivery-before-status
     * makes the first successful delivery report _exit(70), so Kafka has the
     * event and neither the state file nor Postgres has heard of it. */
    bool failpoint_after_delivery;

    /* observability only (docs/observability.md): nothing here feeds a
     * decision of the loop */
    struct relay_stats stats;
    uint64_t confirmed_lsn;  /* flush of the last status update sent (or the slot's) */
    uint64_t server_wal_end; /* IDENTIFY_SYSTEM xlogpos, then keepalive walEnd */
    uint64_t stream_start_lsn;
    int64_t xlog_sent_us; /* send time in the header of the XLogData being handled */
    struct prom_hist latency[LATENCY_STAGES];
    bool streaming;
    bool standby_waiting; /* --standby: waiting for the slot another session holds */
    int64_t next_publish_us;
    struct catchup catchup;
    char err[1024];
};

/* Sets up an idle stream for the settings (borrowed) with the pace.h
 * clocks: no source, sink or watch yet, tracker at 0. Free with stream_fini. */
void stream_init(struct stream *s, const struct relay_common_config *common,
                 const struct relay_stream_config *cfg);
void stream_fini(struct stream *s);

/* Before each stream: the relation cache, the open transaction and the held
 * keepalive are per connection. */
void stream_reset(struct stream *s);

/* Runs the loop on s->src until the stream ends; returns why (logged),
 * after closing or aborting an --exactly-once batch as that end requires. */
enum stream_end stream_run(struct stream *s);

/*
 * Stop path (SIGTERM in docs/guarantees.md#what-happens-when): waits what is
 * left of --shutdown-timeout for deliveries, then sends a last status update
 * when a source is attached. Returns true when everything produced was
 * delivered. The caller closes the source.
 */
bool stream_drain(struct stream *s);

/* The sink's callbacks (sink_delivery_fn, sink_dead_letter_fn); arg is the
 * stream. */
void stream_on_delivery(void *arg, uint64_t seq, const char *err, bool permanent,
                        const char *event_id, const char *lsn_text);
void stream_on_dead_letter(void *arg, uint64_t seq, const char *err, const char *event_id,
                           const char *lsn_text);

/* Publishes the metrics snapshot (at most every 100 ms unless force) and
 * reports catch-up progress. Reads the state; decides nothing. */
void stream_observe(struct stream *s, bool force);

/* Logs an --exactly-once outcome (s->err says why) and returns how the
 * stream must end. */
enum stream_end stream_eos_end(struct stream *s, enum eos_result res);

/* ---- shared by cdc/stream.c and cdc/stream_txn.c only -------------------- */

/* One decoded XLogData message: Begin, Commit, Relation, Insert, Message.
 * Returns false with *end set when the stream must end. */
bool stream_handle_xlogdata(struct stream *s, const struct replmsg *m, enum stream_end *end);

/* The stop request (between transactions, or --shutdown-timeout into one). */
bool stream_should_stop(struct stream *s);

/* Keeps the server answered while the loop is not reading the stream (R4:
 * the producer's queue is full; a re-emit reads the table): serves delivery
 * reports, waiting up to poll_ms for one, and sends status updates when due.
 * False with *end set when the stream must end instead of going on. */
bool stream_keep_alive(struct stream *s, int poll_ms, enum stream_end *end);

/* Kafka's state: STREAM_STOP when there is no trouble, else how to end. */
enum stream_end stream_check_kafka(struct stream *s);

/* Routes and produces one event of the open transaction, waiting while the
 * producer's queue is full; meta NULL: the transaction's lsn and commit_ts. */
bool stream_produce_event(struct stream *s, const struct outbox_event *ev,
                          const struct sink_meta *meta, enum stream_end *end);

/* A `cdc-relay reemit` request (prefix REEMIT_PREFIX), cdc/stream_reemit.c. */
bool stream_handle_reemit(struct stream *s, enum stream_end *end);

/* --exactly-once: commits the open Kafka transaction between source
 * transactions when it is due (or force). */
bool stream_eos_close(struct stream *s, bool force, enum stream_end *end);

/* Feeds a fully delivered transaction's times to the latency histograms. */
void stream_observe_delivered(struct stream *s, uint64_t seq);

#endif
