/*
 * What the two relay loops share (stream mode, cdc/stream.c; poll mode,
 * cdc/poll_relay.c): the event counters and the metrics snapshot built from
 * them, the cadence of its publication, the produce that waits while the
 * producer's queue is full (docs/protocol.md#k5), and the words for an event
 * whose aggregate_type makes no topic. No logging.
 */
#ifndef ORDERS_CDC_SHELL_H
#define ORDERS_CDC_SHELL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics.h"
#include "outbox.h"
#include "sink_ops.h"

/* A metrics snapshot is published at most this often (and at stream or
 * batch edges). */
#define SHELL_METRICS_PUBLISH_US 100000

/* Counters since the start of the process (docs/observability.md). */
struct relay_stats {
    uint64_t received;         /* events read from the source */
    uint64_t produced;         /* handed to the producer */
    uint64_t delivered;        /* acknowledged by Kafka */
    uint64_t failed;           /* failed delivery reports and refused produces */
    uint64_t dead_lettered;    /* dead-letter copies acknowledged */
    uint64_t reconnects_pg;    /* connections given up for Postgres trouble */
    uint64_t reconnects_kafka; /* producers given up (rewinds) */
};

/*
 * Whether to publish a snapshot now: force, or SHELL_METRICS_PUBLISH_US since
 * the last one (*next_us is moved on when so). false when board is NULL.
 */
bool shell_publish_due(const struct metrics_board *board, int64_t *next_us, int64_t now_us,
                       bool force);

/* Starts a snapshot: zeroes it, then fills the counters, the server timeout
 * and, when there is a producer, its broker health. */
void shell_snapshot(struct metrics_snapshot *snap, const struct relay_stats *st,
                    int server_timeout_ms, const struct relay_sink_ops *ops, void *sink);

/*
 * Produces ev (dl NULL) or its dead-letter copy (dl set), calling
 * wait(arg) while the producer's queue is full: wait serves delivery reports
 * and returns false to give up, and then this returns SINK_QUEUE_FULL.
 * Otherwise returns the producer's status (err filled unless SINK_OK).
 */
enum sink_status shell_produce(const struct relay_sink_ops *ops, void *sink, const char *topic,
                               const struct outbox_event *ev, const struct sink_meta *meta,
                               const struct sink_dead_letter *dl, uint64_t seq,
                               bool (*wait)(void *arg), void *arg, char *err, size_t errlen);

/* Writes why ev cannot go to a topic made from template tmpl: "aggregate_type
 * 'x' does not make a valid Kafka topic name from template 't'". */
void shell_bad_topic(char *buf, size_t len, const struct outbox_event *ev, const char *tmpl);

#endif
