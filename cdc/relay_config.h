/*
 * cdc-relay's settings, as cdc/options.c makes them from flags, environment,
 * config file and defaults: what both modes use, what only stream mode
 * (cdc/relay.c) and only poll mode (cdc/poll_relay.c) use. And the exit
 * status both report.
 */
#ifndef ORDERS_CDC_RELAY_CONFIG_H
#define ORDERS_CDC_RELAY_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "outbox.h"
#include "pace.h"
#include "sink_kafka.h"

struct metrics_board;

/* Both modes. */
struct relay_common_config {
    const char *database_url;
    const char *brokers;
    const char *table_schema;
    const char *table_name;
    const char *topic_template;
    /* which column is which (--id-column, ..., --header-columns); borrowed */
    const struct outbox_columns *columns;
    int shutdown_timeout_ms;
    int server_timeout_ms; /* stream: no message this long, reconnect; poll: /readyz */
    int connect_timeout_s;
    int reconnect_max_ms;
    const struct sink_prop *kafka_props;
    size_t nkafka_props;
    /* Where the loop publishes its metrics snapshot (at most every 100 ms and
     * at each stream or batch edge), borrowed; NULL: none. */
    struct metrics_board *metrics;
    /* Set by a signal handler; the loop stops reading, drains, confirms. */
    struct stop_signal stop;
};

/* --mode stream: the slot. */
struct relay_stream_config {
    const char *slot;
    const char *publication;
    bool create_slot;
    bool create_publication;
    uint64_t start_lsn; /* 0: resume from the slot */
    uint64_t end_lsn;   /* 0: run until stopped */
    int status_interval_ms;
    bool source_messages;       /* also relay pg_logical_emit_message events */
    const char *message_prefix; /* their prefix, "outbox" */
    int heartbeat_interval_ms;  /* 0: no heartbeat */
    const char *state_file;     /* saved delivered position; NULL: none */
    /* --dead-letter-topic: where events that can never be delivered go;
     * NULL: stop on them (the default policy) */
    const char *dead_letter_topic;
    int64_t replay_window_s; /* hold the slot's confirmed position back this long */
    /* --exactly-once: Kafka transactions with a checkpoint topic (eos.h) */
    bool exactly_once;
    const char *checkpoint_topic;
    uint64_t txn_max_events;
    int txn_max_ms;
};

/* --mode poll (cdc/poll_relay.c). */
struct relay_poll_config {
    int interval_ms;      /* wait after a poll that found nothing */
    int batch;            /* rows per batch (one transaction) */
    int batch_timeout_ms; /* a batch not acknowledged by then is rolled back */
    bool until_empty;     /* exit 0 at the first poll that finds nothing */
};

struct relay_config {
    struct relay_common_config common;
    struct relay_stream_config stream;
    struct relay_poll_config poll;
    bool poll_mode;
};

/* The process's exit status (docs/relay.md, "Exit status"): whether a
 * supervisor should start the relay again is decided by the code alone. */
enum relay_exit {
    RELAY_EXIT_OK = 0,        /* stopped by signal or --end-lsn after draining */
    RELAY_EXIT_ERROR = 1,     /* needs a person (configuration, a possible gap, a bad event);
                                 logged with what to do; not to be restarted blindly */
    RELAY_EXIT_USAGE = 2,     /* bad options (cdc/main.c) */
    RELAY_EXIT_FENCED = 3,    /* --exactly-once: another relay took over the transactional.id */
    RELAY_EXIT_TEMPORARY = 4, /* gave up on a condition that passes: the slot held by another
                                 session for longer than 15 s; a later start may succeed */
};

#endif
