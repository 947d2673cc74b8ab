/*
 * The relay's families through common/prom.c's writer. LSNs are exported as
 * byte positions (gauges); a double holds them exactly up to 8 PiB of WAL.
 */
#include "metrics.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmem.h"

/* Stages of cdc_relay_transaction_latency_seconds; the total has its own family. */
static void latency_histograms(struct prom_buf *b, const struct prom_hist h[LATENCY_STAGES])
{
    static const char stages[] = "cdc_relay_transaction_latency_seconds";
    static const char total[] = "cdc_relay_end_to_end_latency_seconds";
    char labels[32];

    prom_family(
        b, stages, "histogram",
        "Time a transaction spent in each stage between its commit and Kafka's "
        "acknowledgement of its last event: wal (commit to the walsender sending it; server "
        "clock), receive (sent to read by the relay; server clock against this host's), "
        "produce (read to every event handed to the producer), deliver (handed over to the "
        "last delivery report). The stages add up to "
        "cdc_relay_end_to_end_latency_seconds. Stream mode, without --exactly-once.");
    for (int st = 0; st < LATENCY_TOTAL; st++) {
        snprintf(labels, sizeof(labels), "stage=\"%s\"",
                 latency_stage_name((enum latency_stage)st));
        prom_histogram(b, stages, labels, &latency_buckets, &h[st]);
    }
    prom_family(b, total, "histogram",
                "Time from a transaction's commit (server clock) to the relay handling Kafka's "
                "acknowledgement of its last event: the end-to-end latency of its events. Stream "
                "mode, without --exactly-once.");
    prom_histogram(b, total, NULL, &latency_buckets, &h[LATENCY_TOTAL]);
}

static void labelled_broker(struct prom_buf *b, const char *name, const char *broker)
{
    prom_printf(b, "%s{broker=\"", name);
    prom_label_value(b, broker);
    prom_printf(b, "\"} ");
}

char *metrics_render(const struct metrics_snapshot *s, const struct prom_process *proc,
                     const struct version_libs *libs, int64_t now_unix_us, int64_t now_mono_us)
{
    struct prom_buf b;
    double lag_s = 0;
    char reason[128];
    const struct sink_stats *k = &s->kafka;

    prom_init(&b);
    if (s->pending_known && now_unix_us > s->oldest_pending_commit_us)
        lag_s = (double)(now_unix_us - s->oldest_pending_commit_us) / 1e6;

    prom_metric_u64(&b, "cdc_relay_events_received_total", "counter",
                    "Outbox events decoded from the replication stream in transactions being "
                    "relayed (re-sent copies and transactions before --start-lsn are skipped, not "
                    "counted).",
                    s->events_received);
    prom_metric_u64(&b, "cdc_relay_events_produced_total", "counter",
                    "Events handed to the Kafka producer.", s->events_produced);
    prom_metric_u64(&b, "cdc_relay_events_delivered_total", "counter",
                    "Events Kafka acknowledged (successful delivery reports, acks=all).",
                    s->events_delivered);
    prom_metric_u64(&b, "cdc_relay_events_failed_total", "counter",
                    "Events with a failed delivery report, or refused by the producer; each one "
                    "makes the relay rewind (and send again) or stop, never confirm it.",
                    s->events_failed);
    prom_metric_u64(&b, "cdc_relay_events_dead_lettered_total", "counter",
                    "Events that could never be delivered as they are and whose copy the "
                    "--dead-letter-topic acknowledged (also counted as delivered).",
                    s->events_dead_lettered);
    prom_metric_u64(&b, "cdc_relay_events_in_flight", "gauge",
                    "Events produced and not yet reported by Kafka.", s->events_in_flight);

    prom_metric_u64(&b, "cdc_relay_received_lsn_bytes", "gauge",
                    "Furthest WAL position received from the server (commit end or keepalive), as "
                    "a byte position.",
                    s->received_lsn);
    prom_metric_u64(&b, "cdc_relay_delivered_lsn_bytes", "gauge",
                    "WAL position up to which every event is in Kafka (the watermark the relay may "
                    "confirm), as a byte position.",
                    s->delivered_lsn);
    prom_metric_u64(&b, "cdc_relay_confirmed_lsn_bytes", "gauge",
                    "Flush position last sent to Postgres in a standby status update (the slot's "
                    "confirmed_flush_lsn follows it; --replay-window holds it back), as a byte "
                    "position.",
                    s->confirmed_lsn);
    prom_metric_u64(&b, "cdc_relay_server_wal_end_lsn_bytes", "gauge",
                    "Server WAL end as far as the relay knows without querying: IDENTIFY_SYSTEM "
                    "xlogpos at connect, then each keepalive's walEnd (the walsender's sent "
                    "position, which trails the server's insert position while it decodes a "
                    "backlog).",
                    s->server_wal_end_lsn);
    prom_metric_u64(
        &b, "cdc_relay_lag_bytes", "gauge",
        "cdc_relay_server_wal_end_lsn_bytes minus cdc_relay_confirmed_lsn_bytes: WAL "
        "the slot still holds for this relay.",
        s->server_wal_end_lsn > s->confirmed_lsn ? s->server_wal_end_lsn - s->confirmed_lsn : 0);
    prom_family(&b, "cdc_relay_lag_seconds", "gauge",
                "Now minus the commit time of the oldest transaction with undelivered events, 0 "
                "when nothing is in flight (server commit timestamps against this host's clock).");
    prom_double(&b, "cdc_relay_lag_seconds", NULL, lag_s);
    latency_histograms(&b, s->latency);

    prom_family(&b, "cdc_relay_reconnects_total", "counter",
                "Times the relay left its replication stream to start it again: "
                "cause=\"postgres\" (connection lost, failed or silent), cause=\"kafka\" (rewind "
                "with a new producer after a failed delivery or a fatal producer error).");
    prom_u64(&b, "cdc_relay_reconnects_total", "cause=\"postgres\"", s->reconnects_postgres);
    prom_u64(&b, "cdc_relay_reconnects_total", "cause=\"kafka\"", s->reconnects_kafka);

    prom_family(&b, "cdc_relay_broker_up", "gauge",
                "1 when librdkafka's connection to the broker is up (state UP in its statistics).");
    for (int i = 0; s->have_kafka && i < k->nbrokers; i++) {
        labelled_broker(&b, "cdc_relay_broker_up", k->brokers[i].name);
        prom_printf(&b, "%d\n", k->brokers[i].up ? 1 : 0);
    }
    prom_family(&b, "cdc_relay_broker_rtt_seconds", "gauge",
                "Average request round-trip to the broker (librdkafka statistics rtt.avg) over the "
                "last statistics.interval.ms window that had requests.");
    for (int i = 0; s->have_kafka && i < k->nbrokers; i++) {
        if (k->brokers[i].rtt_us < 0)
            continue;
        labelled_broker(&b, "cdc_relay_broker_rtt_seconds", k->brokers[i].name);
        prom_printf(&b, "%.6f\n", (double)k->brokers[i].rtt_us / 1e6);
    }

    prom_metric_u64(&b, "cdc_relay_streaming", "gauge",
                    "1 while the replication stream is established.", s->streaming ? 1 : 0);
    prom_metric_u64(&b, "cdc_relay_catching_up", "gauge",
                    "1 while the relay is catching up a WAL backlog (and logs its progress).",
                    s->catching_up ? 1 : 0);
    prom_metric_u64(&b, "cdc_relay_standby_waiting", "gauge",
                    "1 while a --standby relay waits for the slot another session holds.",
                    s->standby_waiting ? 1 : 0);
    prom_metric_u64(&b, "cdc_relay_ready", "gauge", "1 when /readyz answers 200.",
                    metrics_ready(s, now_mono_us, reason, sizeof(reason)) ? 1 : 0);
    if (proc != NULL)
        prom_process(&b, proc);
    if (libs != NULL)
        version_build_info(&b, "cdc_relay_build_info",
                           "Always 1: the cdc-relay version and the libraries it runs with.", libs);
    return prom_take(&b);
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
