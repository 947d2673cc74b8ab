#include "shell.h"

#include <stdio.h>
#include <string.h>

bool shell_publish_due(const struct metrics_board *board, int64_t *next_us, int64_t now_us,
                       bool force)
{
    if (board == NULL || (!force && now_us < *next_us))
        return false;
    *next_us = now_us + SHELL_METRICS_PUBLISH_US;
    return true;
}

void shell_snapshot(struct metrics_snapshot *snap, const struct relay_stats *st,
                    int server_timeout_ms, const struct relay_sink_ops *ops, void *sink)
{
    memset(snap, 0, sizeof(*snap));
    snap->events_received = st->received;
    snap->events_produced = st->produced;
    snap->events_delivered = st->delivered;
    snap->events_failed = st->failed;
    snap->events_dead_lettered = st->dead_lettered;
    snap->reconnects_postgres = st->reconnects_pg;
    snap->reconnects_kafka = st->reconnects_kafka;
    snap->server_timeout_ms = server_timeout_ms;
    snap->have_kafka = sink != NULL;
    if (sink != NULL)
        ops->stats(sink, &snap->kafka);
}

enum sink_status shell_produce(const struct relay_sink_ops *ops, void *sink, const char *topic,
                               const struct outbox_event *ev, const struct sink_meta *meta,
                               const struct sink_dead_letter *dl, uint64_t seq,
                               bool (*wait)(void *arg), void *arg, char *err, size_t errlen)
{
    for (;;) {
        enum sink_status st = dl != NULL
                                  ? ops->produce_dead_letter(sink, ev, meta, dl, seq, err, errlen)
                                  : ops->produce(sink, topic, ev, meta, seq, err, errlen);

        if (st != SINK_QUEUE_FULL)
            return st;
        /* Back-pressure (K5): the event waits, never dropped. */
        if (!wait(arg))
            return SINK_QUEUE_FULL;
    }
}

void shell_bad_topic(char *buf, size_t len, const struct outbox_event *ev, const char *tmpl)
{
    snprintf(buf, len,
             "aggregate_type '%.*s' does not make a valid Kafka topic name from template '%s'",
             (int)ev->aggregate_type.len, ev->aggregate_type.ptr, tmpl);
}
