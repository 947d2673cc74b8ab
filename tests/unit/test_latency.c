/* Stage histograms: which bucket a duration lands in, clocks that disagree,
 * end points not known. */
#include "cdc/latency.h"
#include "unit/check.h"

static uint64_t in_bucket(const struct prom_hist *h, int64_t le_us)
{
    for (int i = 0; i < LATENCY_BUCKETS; i++)
        if (latency_bucket_le_us[i] == le_us)
            return h->bucket[i];
    return UINT64_MAX;
}

static void test_stages_split_the_total(void)
{
    struct prom_hist h[LATENCY_STAGES] = {0};
    struct latency_times t = {
        .commit_us = 5000000, .sent_us = 5002000, .received_us = 5002100, .produced_us = 5002150};

    latency_observe(h, &t, 5012150);
    CHECK_EQ_U64(in_bucket(&h[LATENCY_WAL], 2000), 1);      /* exactly 2 ms: le is inclusive */
    CHECK_EQ_U64(in_bucket(&h[LATENCY_RECEIVE], 100), 1);   /* 100 µs */
    CHECK_EQ_U64(in_bucket(&h[LATENCY_PRODUCE], 100), 1);   /* 50 µs */
    CHECK_EQ_U64(in_bucket(&h[LATENCY_DELIVER], 10000), 1); /* 10 ms */
    CHECK_EQ_U64(in_bucket(&h[LATENCY_TOTAL], 15000), 1);   /* 12.15 ms */
    for (int s = 0; s < LATENCY_STAGES; s++)
        CHECK_EQ_U64(prom_hist_count(&h[s], &latency_buckets), 1);
    CHECK_EQ_U64(h[LATENCY_WAL].sum_us + h[LATENCY_RECEIVE].sum_us + h[LATENCY_PRODUCE].sum_us +
                     h[LATENCY_DELIVER].sum_us,
                 h[LATENCY_TOTAL].sum_us);
}

static void test_clock_skew_counts_as_zero(void)
{
    struct prom_hist h[LATENCY_STAGES] = {0};
    /* the relay's clock 3 ms behind the server's: it "reads" before the send */
    struct latency_times t = {
        .commit_us = 1000, .sent_us = 5000, .received_us = 2000, .produced_us = 2100};

    latency_observe(h, &t, 2600);
    CHECK_EQ_U64(h[LATENCY_RECEIVE].bucket[0], 1);
    CHECK_EQ_U64(h[LATENCY_RECEIVE].sum_us, 0);
    CHECK_EQ_U64(h[LATENCY_TOTAL].sum_us, 1600);
}

static void test_unknown_end_points_are_left_out(void)
{
    struct prom_hist h[LATENCY_STAGES] = {0};
    struct latency_times t = {
        .commit_us = 1000, .sent_us = 0, .received_us = 3000, .produced_us = 3100};

    latency_observe(h, &t, 4000);
    CHECK_EQ_U64(prom_hist_count(&h[LATENCY_WAL], &latency_buckets), 0);
    CHECK_EQ_U64(prom_hist_count(&h[LATENCY_RECEIVE], &latency_buckets), 0);
    CHECK_EQ_U64(prom_hist_count(&h[LATENCY_PRODUCE], &latency_buckets), 1);
    CHECK_EQ_U64(prom_hist_count(&h[LATENCY_TOTAL], &latency_buckets), 1);
}

static void test_beyond_the_last_bound(void)
{
    struct prom_hist h[LATENCY_STAGES] = {0};
    struct latency_times t = {1, 2, 3, 4};

    latency_observe(h, &t, 4 + latency_bucket_le_us[LATENCY_BUCKETS - 1] + 1);
    CHECK_EQ_U64(h[LATENCY_DELIVER].bucket[LATENCY_BUCKETS], 1);
    for (int i = 1; i < LATENCY_BUCKETS; i++)
        CHECK(latency_bucket_le_us[i] > latency_bucket_le_us[i - 1]);
    CHECK(strcmp(latency_stage_name(LATENCY_WAL), "wal") == 0);
    CHECK(strcmp(latency_stage_name(LATENCY_TOTAL), "total") == 0);
}

int main(void)
{
    RUN(test_stages_split_the_total);
    RUN(test_clock_skew_counts_as_zero);
    RUN(test_unknown_end_points_are_left_out);
    RUN(test_beyond_the_last_bound);
    return check_summary();
}
