/*
 * The relay: one loop that reads the slot, turns outbox inserts into Kafka
 * messages, and confirms to Postgres only what Kafka acknowledged
 * (docs/protocol.md#the-relays-rules). Owns the replication connection, the producer and the
 * watermark; logs what it decides.
 */
#ifndef ORDERS_CDC_RELAY_H
#define ORDERS_CDC_RELAY_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "sink_kafka.h"

struct metrics_board;

struct relay_config {
    const char *database_url;
    const char *brokers;
    const char *slot;
    const char *publication;
    const char *table_schema;
    const char *table_name;
    const char *topic_template;
    bool create_slot;
    bool create_publication;
    /* --standby: wait without limit while another session holds the slot, then
     * take over from the slot's position */
    bool standby;
    uint64_t start_lsn; /* 0: resume from the slot */
    uint64_t end_lsn;   /* 0: run until stopped */
    int status_interval_ms;
    int shutdown_timeout_ms;
    int server_timeout_ms; /* no message from the server this long: reconnect */
    int connect_timeout_s;
    int reconnect_max_ms;
    bool source_messages;       /* also relay pg_logical_emit_message events */
    const char *message_prefix; /* their prefix, "outbox" */
    int heartbeat_interval_ms;  /* 0: no heartbeat */
    const char *state_file;     /* saved delivered position; NULL: none */
    /* --dead-letter-topic: where events that can never be delivered go;
     * NULL: stop on them (the default policy) */
    const char *dead_letter_topic;
    int64_t replay_window_s; /* hold the slot's confirmed position back this long */
    const struct sink_prop *kafka_props;
    size_t nkafka_props;
    /* --exactly-once: Kafka transactions with a checkpoint topic (eos.h) */
    bool exactly_once;
    const char *checkpoint_topic;
    uint64_t txn_max_events;
    int txn_max_ms;
    /* Where the loop publishes its metrics snapshot (at most every 100 ms and
     * at each stream start and end), borrowed; NULL: none. */
    struct metrics_board *metrics;
    /* --mode poll (cdc/poll_relay.c): slot, publication, LSNs, state file,
     * replay window and heartbeat do not apply there. */
    bool poll_mode;
    int poll_interval_ms;      /* wait after a poll that found nothing */
    int poll_batch;            /* rows per batch (one transaction) */
    int poll_batch_timeout_ms; /* a batch not acknowledged by then is rolled back */
    bool poll_until_empty;     /* exit 0 at the first poll that finds nothing */
    /* Set by a signal handler; the loop stops reading, drains, confirms. */
    volatile sig_atomic_t *stop;
    int stop_fd; /* read end of the signal self-pipe, or -1 */
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

/* Runs until stopped; returns how it ended. Logs every decision. */
enum relay_exit relay_run(const struct relay_config *cfg);

#endif
