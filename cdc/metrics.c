/*
 * Prometheus text format by hand: a handful of families, so a growing string
 * and printf are all it takes. LSNs are exported as byte positions (gauges);
 * a double holds them exactly up to 8 PiB of WAL.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler.h"
#include "xmem.h"

struct sbuf {
    char *p;
    size_t len, cap;
};

static void sb_printf(struct sbuf *b, const char *fmt, ...) PRINTF_FMT(2, 3);

static void sb_printf(struct sbuf *b, const char *fmt, ...)
{
    va_list ap;

    for (;;) {
        int n;

        va_start(ap, fmt);
        n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n;
        b->p = xrealloc(b->p, b->cap);
    }
}

static void family(struct sbuf *b, const char *name, const char *type, const char *help)
{
    sb_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void sample_u64(struct sbuf *b, const char *name, uint64_t v)
{
    sb_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

/* One metric with a single unlabelled sample: HELP, TYPE, value. */
static void metric_u64(struct sbuf *b, const char *name, const char *type, const char *help,
                       uint64_t v)
{
    family(b, name, type, help);
    sample_u64(b, name, v);
}

static void sample_f(struct sbuf *b, const char *name, double v)
{
    sb_printf(b, "%s %.6f\n", name, v);
}

/* Label values escape backslash, double quote and newline (exposition format). */
static void label_value(struct sbuf *b, const char *v)
{
    for (; *v != '\0'; v++) {
        if (*v == '\\')
            sb_printf(b, "\\\\");
        else if (*v == '"')
            sb_printf(b, "\\\"");
        else if (*v == '\n')
            sb_printf(b, "\\n");
        else
            sb_printf(b, "%c", *v);
    }
}

static void sample_labelled_prefix(struct sbuf *b, const char *name, const char *label,
                                   const char *value)
{
    sb_printf(b, "%s{%s=\"", name, label);
    label_value(b, value);
    sb_printf(b, "\"} ");
}

/* A histogram family with one series per stage: cumulative le buckets in
 * seconds, then _sum and _count, as the exposition format has them. */
static void latency_histograms(struct sbuf *b, const struct latency_hist h[LATENCY_STAGES])
{
    static const char name[] = "cdc_relay_transaction_latency_seconds";

    family(b, name, "histogram",
           "Time from a transaction's commit to Kafka's acknowledgement of its last event, by "
           "stage: wal (commit to the walsender sending it; server clock), receive (sent to read "
           "by the relay; server clock against this host's), produce (read to every event handed "
           "to the producer), deliver (handed over to the last delivery report), total (commit "
           "to the last delivery report). Stream mode, without --exactly-once.");
    for (int s = 0; s < LATENCY_STAGES; s++) {
        const char *stage = latency_stage_name((enum latency_stage)s);
        uint64_t cumulative = 0;

        for (int i = 0; i <= LATENCY_BUCKETS; i++) {
            cumulative += h[s].bucket[i];
            if (i < LATENCY_BUCKETS)
                sb_printf(b, "%s_bucket{stage=\"%s\",le=\"%g\"} %llu\n", name, stage,
                          (double)latency_bucket_le_us[i] / 1e6, (unsigned long long)cumulative);
            else
                sb_printf(b, "%s_bucket{stage=\"%s\",le=\"+Inf\"} %llu\n", name, stage,
                          (unsigned long long)cumulative);
        }
        sb_printf(b, "%s_sum{stage=\"%s\"} %.6f\n", name, stage, (double)h[s].sum_us / 1e6);
        sb_printf(b, "%s_count{stage=\"%s\"} %llu\n", name, stage, (unsigned long long)h[s].count);
    }
}

char *metrics_render(const struct metrics_snapshot *s, int64_t now_unix_us, int64_t now_mono_us)
{
    struct sbuf b = {.p = xmalloc(4096), .len = 0, .cap = 4096};
    double lag_s = 0;
    char reason[128];
    const struct sink_stats *k = &s->kafka;

    b.p[0] = '\0';
    if (s->pending_known && now_unix_us > s->oldest_pending_commit_us)
        lag_s = (double)(now_unix_us - s->oldest_pending_commit_us) / 1e6;

    metric_u64(&b, "cdc_relay_events_received_total", "counter",
               "Outbox events decoded from the replication stream in transactions being relayed "
               "(re-sent copies and transactions before --start-lsn are skipped, not counted).",
               s->events_received);
    metric_u64(&b, "cdc_relay_events_produced_total", "counter",
               "Events handed to the Kafka producer.", s->events_produced);
    metric_u64(&b, "cdc_relay_events_delivered_total", "counter",
               "Events Kafka acknowledged (successful delivery reports, acks=all).",
               s->events_delivered);
    metric_u64(&b, "cdc_relay_events_failed_total", "counter",
               "Events with a failed delivery report, or refused by the producer; each one makes "
               "the relay rewind (and send again) or stop, never confirm it.",
               s->events_failed);
    metric_u64(&b, "cdc_relay_events_dead_lettered_total", "counter",
               "Events that could never be delivered as they are and whose copy the "
               "--dead-letter-topic acknowledged (also counted as delivered).",
               s->events_dead_lettered);
    metric_u64(&b, "cdc_relay_events_in_flight", "gauge",
               "Events produced and not yet reported by Kafka.", s->events_in_flight);

    metric_u64(&b, "cdc_relay_received_lsn_bytes", "gauge",
               "Furthest WAL position received from the server (commit end or keepalive), as a "
               "byte position.",
               s->received_lsn);
    metric_u64(&b, "cdc_relay_delivered_lsn_bytes", "gauge",
               "WAL position up to which every event is in Kafka (the watermark the relay may "
               "confirm), as a byte position.",
               s->delivered_lsn);
    metric_u64(
        &b, "cdc_relay_confirmed_lsn_bytes", "gauge",
        "Flush position last sent to Postgres in a standby status update (the slot's "
        "confirmed_flush_lsn follows it; --replay-window holds it back), as a byte position.",
        s->confirmed_lsn);
    metric_u64(&b, "cdc_relay_server_wal_end_lsn_bytes", "gauge",
               "Server WAL end as far as the relay knows without querying: IDENTIFY_SYSTEM xlogpos "
               "at connect, then each keepalive's walEnd (the walsender's sent position, which "
               "trails the server's insert position while it decodes a backlog).",
               s->server_wal_end_lsn);
    metric_u64(&b, "cdc_relay_lag_bytes", "gauge",
               "cdc_relay_server_wal_end_lsn_bytes minus cdc_relay_confirmed_lsn_bytes: WAL the "
               "slot still holds for this relay.",
               s->server_wal_end_lsn > s->confirmed_lsn ? s->server_wal_end_lsn - s->confirmed_lsn
                                                        : 0);
    family(&b, "cdc_relay_lag_seconds", "gauge",
           "Now minus the commit time of the oldest transaction with undelivered events, 0 when "
           "nothing is in flight (server commit timestamps against this host's clock).");
    sample_f(&b, "cdc_relay_lag_seconds", lag_s);
    latency_histograms(&b, s->latency);

    family(&b, "cdc_relay_reconnects_total", "counter",
           "Times the relay left its replication stream to start it again: cause=\"postgres\" "
           "(connection lost, failed or silent), cause=\"kafka\" (rewind with a new producer "
           "after a failed delivery or a fatal producer error).");
    sb_printf(&b, "cdc_relay_reconnects_total{cause=\"postgres\"} %llu\n",
              (unsigned long long)s->reconnects_postgres);
    sb_printf(&b, "cdc_relay_reconnects_total{cause=\"kafka\"} %llu\n",
              (unsigned long long)s->reconnects_kafka);

    family(&b, "cdc_relay_broker_up", "gauge",
           "1 when librdkafka's connection to the broker is up (state UP in its statistics).");
    for (int i = 0; s->have_kafka && i < k->nbrokers; i++) {
        sample_labelled_prefix(&b, "cdc_relay_broker_up", "broker", k->brokers[i].name);
        sb_printf(&b, "%d\n", k->brokers[i].up ? 1 : 0);
    }
    family(&b, "cdc_relay_broker_rtt_seconds", "gauge",
           "Average request round-trip to the broker (librdkafka statistics rtt.avg) over the "
           "last statistics.interval.ms window that had requests.");
    for (int i = 0; s->have_kafka && i < k->nbrokers; i++) {
        if (k->brokers[i].rtt_us < 0)
            continue;
        sample_labelled_prefix(&b, "cdc_relay_broker_rtt_seconds", "broker", k->brokers[i].name);
        sb_printf(&b, "%.6f\n", (double)k->brokers[i].rtt_us / 1e6);
    }

    metric_u64(&b, "cdc_relay_streaming", "gauge", "1 while the replication stream is established.",
               s->streaming ? 1 : 0);
    metric_u64(&b, "cdc_relay_catching_up", "gauge",
               "1 while the relay is catching up a WAL backlog (and logs its progress).",
               s->catching_up ? 1 : 0);
    metric_u64(&b, "cdc_relay_ready", "gauge", "1 when /readyz answers 200.",
               metrics_ready(s, now_mono_us, reason, sizeof(reason)) ? 1 : 0);
    return b.p;
}

bool metrics_ready(const struct metrics_snapshot *s, int64_t now_mono_us, char *reason,
                   size_t reasonlen)
{
    int64_t silent_ms = (now_mono_us - s->last_server_msg_us) / 1000;

    if (!s->streaming) {
        snprintf(reason, reasonlen, "replication stream not established");
        return false;
    }
    if (silent_ms >= s->server_timeout_ms) {
        snprintf(reason, reasonlen, "no message from the server for %lld ms", (long long)silent_ms);
        return false;
    }
    if (!s->have_kafka) {
        snprintf(reason, reasonlen, "no kafka producer");
        return false;
    }
    if (s->kafka.known ? s->kafka.brokers_up == 0 : s->kafka.all_brokers_down) {
        snprintf(reason, reasonlen, "no kafka broker up");
        return false;
    }
    snprintf(reason, reasonlen, "ready");
    return true;
}

struct metrics_board {
    pthread_mutex_t mu;
    struct metrics_snapshot snap;
};

struct metrics_board *metrics_board_new(void)
{
    struct metrics_board *b = xcalloc(1, sizeof(*b));

    pthread_mutex_init(&b->mu, NULL);
    return b;
}

void metrics_board_free(struct metrics_board *b)
{
    if (b == NULL)
        return;
    pthread_mutex_destroy(&b->mu);
    free(b);
}

void metrics_board_publish(struct metrics_board *b, const struct metrics_snapshot *s)
{
    pthread_mutex_lock(&b->mu);
    b->snap = *s;
    pthread_mutex_unlock(&b->mu);
}

void metrics_board_read(struct metrics_board *b, struct metrics_snapshot *out)
{
    pthread_mutex_lock(&b->mu);
    *out = b->snap;
    pthread_mutex_unlock(&b->mu);
}
