/*
 * The relay's metrics (docs/observability.md): a plain snapshot that the loop
 * fills, a board that hands it to the HTTP thread under a mutex, the
 * Prometheus text rendering and the readiness rule. No I/O, no logging;
 * rendering and readiness are pure functions of a snapshot and a clock.
 */
#ifndef ORDERS_CDC_METRICS_H
#define ORDERS_CDC_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "latency.h"
#include "prom.h"
#include "sink_kafka.h"
#include "version.h"

struct metrics_snapshot {
    /* counters, since the start of the process */
    uint64_t events_received;
    uint64_t events_produced;
    uint64_t events_delivered;
    uint64_t events_failed;
    uint64_t events_dead_lettered;
    uint64_t reconnects_postgres;
    uint64_t reconnects_kafka;
    /* gauges */
    uint64_t events_in_flight;
    uint64_t received_lsn;
    uint64_t delivered_lsn;
    uint64_t confirmed_lsn;
    uint64_t server_wal_end_lsn;
    bool pending_known;               /* events in flight: oldest_pending_commit_us is valid */
    int64_t oldest_pending_commit_us; /* Unix µs, from the server's commit timestamp */
    bool streaming;                   /* START_REPLICATION succeeded, stream not ended */
    bool catching_up;
    bool standby_waiting;       /* --standby: waiting for the slot another session holds */
    int64_t last_server_msg_us; /* CLOCK_MONOTONIC µs of the last CopyData from the server */
    int server_timeout_ms;
    bool have_kafka; /* a producer exists; kafka is valid */
    struct sink_stats kafka;
    struct prom_hist latency[LATENCY_STAGES]; /* since the start of the process */
};

/*
 * Renders s in the Prometheus text exposition format (version 0.0.4): every
 * family with # HELP and # TYPE, names in cdc_relay_*, then process_* from
 * proc and cdc_relay_build_info from libs (NULL: left out). now_unix_us
 * feeds cdc_relay_lag_seconds, now_mono_us cdc_relay_ready. Returns new
 * (free()).
 */
char *metrics_render(const struct metrics_snapshot *s, const struct prom_process *proc,
                     const struct version_libs *libs, int64_t now_unix_us, int64_t now_mono_us);

/*
 * The /readyz rule: the stream is established, the server sent something
 * within server_timeout_ms, and Kafka has a broker up (from statistics; when
 * none were ever parsed, no ALL_BROKERS_DOWN since the last delivery).
 * Returns true, or false with a short lower-case reason in reason.
 */
bool metrics_ready(const struct metrics_snapshot *s, int64_t now_mono_us, char *reason,
                   size_t reasonlen);

/* A snapshot shared between the loop (writer) and the HTTP thread (reader). */
struct metrics_board;

/* Returns new (free with metrics_board_free), holding a zeroed snapshot. */
struct metrics_board *metrics_board_new(void);
void metrics_board_free(struct metrics_board *b); /* NULL-safe */

/* Thread-safe: copies s in / the latest snapshot out under the board's mutex. */
void metrics_board_publish(struct metrics_board *b, const struct metrics_snapshot *s);
void metrics_board_read(struct metrics_board *b, struct metrics_snapshot *out);

#endif
