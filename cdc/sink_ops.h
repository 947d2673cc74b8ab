/*
 * The producer as both relay loops see it (stream mode's cdc/stream.c, poll
 * mode's cdc/poll_relay.c): a small struct of function pointers, with
 * librdkafka (cdc/sink_kafka.c) behind it in the relay and a recording
 * producer in the unit tests (tests/unit/test_stream.c).
 */
#ifndef ORDERS_CDC_SINK_OPS_H
#define ORDERS_CDC_SINK_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"
#include "sink_kafka.h"

/* The producer (sink_kafka.h says what each does); the argument is the
 * sink's own handle. Delivery reports reach the callbacks the sink was made
 * with, from poll and flush. */
struct relay_sink_ops {
    enum sink_status (*produce)(void *sink, const char *topic, const struct outbox_event *ev,
                                const struct sink_meta *meta, uint64_t seq, char *err,
                                size_t errlen);
    enum sink_status (*produce_dead_letter)(void *sink, const struct outbox_event *ev,
                                            const struct sink_meta *meta,
                                            const struct sink_dead_letter *dl, uint64_t seq,
                                            char *err, size_t errlen);
    void (*poll)(void *sink, int timeout_ms);
    int (*flush)(void *sink, int timeout_ms);
    bool (*fatal)(void *sink, char *err, size_t errlen);
    bool (*fenced)(void *sink);
    int (*wakeup_fd)(const void *sink);
    void (*stats)(const void *sink, struct sink_stats *out);
};

/* librdkafka's producer (cdc/sink_kafka.c); the handle is a struct sink. */
extern const struct relay_sink_ops sink_kafka_ops;

#endif
