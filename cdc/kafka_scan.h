/*
 * Reading topics back (cdc-relay audit): a read_committed librdkafka consumer
 * of its own, no consumer group, nothing committed, that reads every
 * partition of the given topics from the first message at or after a time
 * to the partition's end as it was when the scan began, and hands each
 * message's position, timestamp and chosen headers to a callback. With
 * cdc/sink_kafka.c, the only relay file that includes rdkafka.h. Does not
 * log; not thread-safe.
 */
#ifndef ORDERS_CDC_KAFKA_SCAN_H
#define ORDERS_CDC_KAFKA_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "sink_kafka.h"

#define KAFKA_SCAN_MAX_HEADERS 4

/* One message; every pointer borrowed for the callback only. */
struct kafka_scan_msg {
    size_t topic; /* index into the topics given */
    int32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* the record's timestamp, -1 when it has none */
    /* the last value of each header asked for; NULL when absent (or null) */
    const char *header[KAFKA_SCAN_MAX_HEADERS];
    size_t header_len[KAFKA_SCAN_MAX_HEADERS];
};

typedef void (*kafka_scan_fn)(void *arg, const struct kafka_scan_msg *m);

struct kafka_scan_stats {
    uint64_t messages;   /* handed to the callback */
    uint64_t partitions; /* read (a topic the broker does not know has none) */
    uint64_t missing_topics;
};

/*
 * Reads topics[0..ntopics) (brokers, then props: the user's -X properties,
 * which may override the scanner's defaults) from from_ms (Unix
 * milliseconds; the first offset at or after it, per partition) to the end
 * each partition had when the scan started (for read_committed: its last
 * stable offset), calling fn for each message with the headers named in
 * headers[0..nheaders). A topic the broker does not have counts in
 * stats->missing_topics and is not an error. Fails when no progress is made
 * for idle_timeout_ms. Returns 0, or -1 with err filled.
 */
int kafka_scan(const char *brokers, const struct sink_prop *props, size_t nprops,
               const char *const *topics, size_t ntopics, int64_t from_ms,
               const char *const *headers, size_t nheaders, int idle_timeout_ms, kafka_scan_fn fn,
               void *arg, struct kafka_scan_stats *stats, char *err, size_t errlen) MUSTCHECK;

#endif
