/*
 * Where an outbox transaction's time goes between its commit and Kafka's
 * acknowledgement (docs/observability.md): four consecutive stages
 * (cdc_relay_transaction_latency_seconds{stage}) and their total
 * (cdc_relay_end_to_end_latency_seconds), each a histogram with fixed
 * buckets. Pure: the relay passes every time in, this module reads no clock.
 */
#ifndef ORDERS_CDC_LATENCY_H
#define ORDERS_CDC_LATENCY_H

#include <stdint.h>

#include "prom.h"

enum latency_stage {
    LATENCY_WAL,     /* commit -> the walsender sends the transaction's first message */
    LATENCY_RECEIVE, /* sent -> the relay reads it (socket, relay busy or descheduled) */
    LATENCY_PRODUCE, /* read -> the Commit handled, every event handed to the producer */
    LATENCY_DELIVER, /* handed over -> the relay handled the last delivery report */
    LATENCY_TOTAL,   /* commit -> the last delivery report: the sum of the four; rendered
                      * as its own histogram, not as a stage */
    LATENCY_STAGES
};

#define LATENCY_BUCKETS 22

/* Upper bounds of the buckets, microseconds, increasing; +Inf follows. */
extern const int64_t latency_bucket_le_us[LATENCY_BUCKETS];

/* The same bounds for common/prom.h's histograms. */
extern const struct prom_buckets latency_buckets;

/*
 * One transaction's times, microseconds since the Unix epoch. commit_us and
 * sent_us are the server's clock (the Begin message's commit timestamp, the
 * XLogData header's send time), the others the relay's: the first two stages
 * are only as right as the two clocks agree. 0 = not known.
 */
struct latency_times {
    int64_t commit_us;
    int64_t sent_us;
    int64_t received_us;
    int64_t produced_us;
};

/* Adds one delivered transaction to each stage's histogram. A stage whose
 * end is earlier than its start (clocks apart) counts as 0; a stage with an
 * unknown end point is left out. */
void latency_observe(struct prom_hist h[LATENCY_STAGES], const struct latency_times *t,
                     int64_t delivered_us);

/* The stage's label value in the metric: wal, receive, produce, deliver, total. */
const char *latency_stage_name(enum latency_stage s);

#endif
