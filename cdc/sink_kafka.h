/*
 * The Kafka side: one idempotent librdkafka producer (acks=all,
 * murmur2_random) that turns outbox events into messages and reports each
 * delivery back by the sequence number it was produced with; with
 * --exactly-once, its transactions are in cdc/eos_kafka.h. Not thread-safe:
 * call everything, including sink_poll (which runs the delivery callback),
 * from one thread.
 */
#ifndef ORDERS_CDC_SINK_KAFKA_H
#define ORDERS_CDC_SINK_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "outbox.h"

struct sink;

/* Called from sink_poll/sink_flush for each delivery report. err is NULL on
 * success, else a description; permanent is true for errors that a retry
 * cannot fix (message too large, authorization, invalid topic). On failure
 * event_id and lsn are the message's id and lsn headers (for the log; "?"
 * when absent), NULL on success. All borrowed for the call. */
typedef void (*sink_delivery_fn)(void *arg, uint64_t seq, const char *err, bool permanent,
                                 const char *event_id, const char *lsn);

struct sink_prop {
    const char *name;
    const char *value;
};

/* True for librdkafka properties whose values are secrets (passwords,
 * private keys, client secrets): never printed, also not in errors. */
bool sink_prop_is_secret(const char *name);

/*
 * Whether librdkafka takes name=value (rd_kafka_conf_set on a scratch
 * configuration: unknown names and invalid values fail; whether properties
 * agree with each other is only known when the producer is made). 0, or -1
 * with the reason in err (the value left out for secret properties). Fits
 * options_kafka_check_fn.
 */
int sink_prop_check(const char *name, const char *value, char *err, size_t errlen);

/*
 * Returns a new producer (free with sink_free) or NULL with err filled.
 * Relay defaults are applied first, then props in order (kcat's -X), so a
 * user can override anything.
 */
struct sink *sink_new(const char *brokers, const struct sink_prop *props, size_t nprops,
                      sink_delivery_fn on_delivery, void *arg, char *err, size_t errlen);

/* Purges whatever is still queued (those reports are not delivered to the
 * callback) and destroys the producer. NULL-safe. */
void sink_free(struct sink *s);

enum sink_status {
    SINK_OK = 0,
    SINK_QUEUE_FULL, /* back-pressure: poll and try again */
    SINK_EPERMANENT, /* this event can never be produced as is (err says why) */
    SINK_EFATAL,     /* the producer is unusable: rewind with a new one */
    SINK_ETOOLARGE,  /* permanent, because of the message's size */
};

/* Headers that go with each event (docs/architecture.md#fixed-interfaces). */
struct sink_meta {
    const char *lsn;       /* commit LSN, "X/Y"; NULL: no lsn header (poll mode) */
    const char *commit_ts; /* ISO 8601 UTC */
    /* A re-sent event (cdc-relay reemit): the request's LSN, sent with
     * replayed: true as the replay_request header; NULL: a live event. */
    const char *replay_request;
};

#define SINK_REPLAYED_HDR       "replayed"
#define SINK_REPLAY_REQUEST_HDR "replay_request"

/* Produces ev to topic (payload copied). */
enum sink_status sink_produce(struct sink *s, const char *topic, const struct outbox_event *ev,
                              const struct sink_meta *meta, uint64_t seq, char *err,
                              size_t errlen) MUSTCHECK;

/*
 * Dead-letter topic (--dead-letter-topic). Once set, a message whose delivery
 * fails permanently is not reported failed: the sink sends a copy to topic
 * (same key and headers, plus the dl_* headers below; without the value when
 * the error was its size) under the same seq, and the copy's report is the
 * one on_delivery gets. on_dead_letter is called with err set when a failed
 * delivery is redirected, and with err NULL when a dead-letter copy is
 * acknowledged (from sink_poll/sink_flush; arguments borrowed for the call).
 * A copy that fails in turn is reported to on_delivery as a permanent
 * failure: never redirected twice. topic is borrowed for the sink's life.
 */
typedef void (*sink_dead_letter_fn)(void *arg, uint64_t seq, const char *err, const char *event_id,
                                    const char *lsn);
void sink_set_dead_letter(struct sink *s, const char *topic, sink_dead_letter_fn on_dead_letter);

/* Headers a dead-letter copy carries on top of the event's own. */
#define SINK_DL_TOPIC_HDR   "dl_original_topic"
#define SINK_DL_ERROR_HDR   "dl_error"
#define SINK_DL_ID_HDR      "dl_event_id"
#define SINK_DL_LSN_HDR     "dl_lsn"
#define SINK_DL_DROPPED_HDR "dl_value_dropped"

/* Why an event goes straight to the dead-letter topic (it could not be
 * produced at all). original_topic may be NULL (no valid name could be
 * made); drop_value sends the record without its payload. */
struct sink_dead_letter {
    const char *original_topic;
    const char *error;
    bool drop_value;
};

/* Produces ev to the dead-letter topic under seq; the event may lack any
 * column (NULL views are sent as absent key/headers). SINK_EPERMANENT when no
 * dead-letter topic is set or the copy itself cannot be produced. */
enum sink_status sink_produce_dead_letter(struct sink *s, const struct outbox_event *ev,
                                          const struct sink_meta *meta,
                                          const struct sink_dead_letter *dl, uint64_t seq,
                                          char *err, size_t errlen) MUSTCHECK;

/* Serves delivery reports and errors, waiting up to timeout_ms for the first. */
void sink_poll(struct sink *s, int timeout_ms);

/* Waits up to timeout_ms for every queued message; returns the number still
 * undelivered. */
int sink_flush(struct sink *s, int timeout_ms);

/* Messages produced and not yet reported. */
int sink_outstanding(const struct sink *s);

/* True once librdkafka raised a fatal error; err gets its text. */
bool sink_fatal(struct sink *s, char *err, size_t errlen);

/* True when the producer's fatal error is a fencing one (a newer instance
 * with the same transactional.id). */
bool sink_fenced(struct sink *s);

/* A file descriptor that becomes readable when reports are waiting, for
 * poll() next to the replication socket. Drain it with sink_poll. */
int sink_wakeup_fd(const struct sink *s);

/*
 * Broker health for metrics and /readyz, from librdkafka's statistics
 * (statistics.interval.ms, relay default 1000; the stats callback runs in
 * sink_poll) and its error callback.
 */
#define SINK_MAX_BROKERS     16
#define SINK_BROKER_NAME_MAX 128

struct sink_broker_stats {
    char name[SINK_BROKER_NAME_MAX]; /* librdkafka's "host:port/nodeid" */
    bool up;                         /* state "UP" */
    int64_t rtt_us;                  /* rtt.avg of the last window that had requests; -1 none yet */
};

struct sink_stats {
    bool known; /* at least one statistics report parsed */
    int nbrokers;
    int brokers_up;
    struct sink_broker_stats brokers[SINK_MAX_BROKERS];
    /* ALL_BROKERS_DOWN reported and no successful delivery or broker UP
     * since: the readiness signal when statistics are turned off. */
    bool all_brokers_down;
};

/* Copies the latest broker health into *out. */
void sink_stats(const struct sink *s, struct sink_stats *out);

/*
 * Parses one librdkafka statistics JSON document into *out: the real brokers
 * (source "learned" or "configured"; not the internal or logical ones), at
 * most SINK_MAX_BROKERS. A broker whose rtt window is empty keeps the rtt
 * found for the same name in prev (may be NULL). Pure; returns false when
 * json is not a statistics object (then *out is untouched).
 */
bool sink_stats_parse(const char *json, size_t len, const struct sink_stats *prev,
                      struct sink_stats *out);

/* librdkafka's and jansson's run-time versions ("2.0.2", "2.14"), for
 * --version and build_info (jansson parses the statistics here). */
const char *sink_kafka_version(void);
const char *sink_jansson_version(void);

#endif
