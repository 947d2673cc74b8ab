/*
 * Buckets from 0.1 ms to 30 s, dense between 1 and 100 ms where a relay
 * that keeps up lives, so that a p99 read from them says which stage it is
 * in, not only that it is "somewhere under 50 ms".
 */
#include "latency.h"

#include <stddef.h>

const int64_t latency_bucket_le_us[LATENCY_BUCKETS] = {
    100,   250,   500,   1000,   2000,   3000,   5000,    7500,    10000,   15000,    20000,
    30000, 50000, 75000, 100000, 250000, 500000, 1000000, 2500000, 5000000, 10000000, 30000000,
};

const struct prom_buckets latency_buckets = {latency_bucket_le_us, LATENCY_BUCKETS};

static void observe(struct prom_hist *h, int64_t from_us, int64_t to_us)
{
    if (from_us == 0 || to_us == 0)
        return;
    prom_hist_observe(h, &latency_buckets, to_us > from_us ? to_us - from_us : 0);
}

void latency_observe(struct prom_hist h[LATENCY_STAGES], const struct latency_times *t,
                     int64_t delivered_us)
{
    observe(&h[LATENCY_WAL], t->commit_us, t->sent_us);
    observe(&h[LATENCY_RECEIVE], t->sent_us, t->received_us);
    observe(&h[LATENCY_PRODUCE], t->received_us, t->produced_us);
    observe(&h[LATENCY_DELIVER], t->produced_us, delivered_us);
    observe(&h[LATENCY_TOTAL], t->commit_us, delivered_us);
}

const char *latency_stage_name(enum latency_stage s)
{
    static const char *const names[LATENCY_STAGES] = {
        [LATENCY_WAL] = "wal",         [LATENCY_RECEIVE] = "receive", [LATENCY_PRODUCE] = "produce",
        [LATENCY_DELIVER] = "deliver", [LATENCY_TOTAL] = "total",
    };

    return (unsigned)s < LATENCY_STAGES ? names[s] : "unknown";
}
