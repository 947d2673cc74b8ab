/*
 * The stream loop's seams (cdc/stream.c): where its messages come from and
 * its status updates go (the source), where its events go and their delivery
 * reports come from (the sink), and the side checks next to the stream (the
 * watch). Small structs of function pointers: the relay plugs in libpq
 * (cdc/repl.c) and librdkafka (cdc/sink_kafka.c), the unit tests a recorded
 * stream and a recording producer (tests/unit/test_stream.c). And the
 * re-emit server: the table read for a `cdc-relay reemit` request.
 */
#ifndef ORDERS_CDC_RELAY_OPS_H
#define ORDERS_CDC_RELAY_OPS_H

#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "reemit_serve.h"
#include "repl.h"
#include "replmsg.h"
#include "sink_ops.h"

/* The replication stream: the argument is the source's own handle. */
struct relay_source_ops {
    /* One message without blocking: 1 with *msg filled (its data borrowed
     * until the next recv), 0 when nothing is buffered (wait for the socket,
     * then consume), or a negative repl_status with err filled. */
    int (*recv)(void *src, struct replmsg *msg, char *err, size_t errlen);
    /* Reads what the socket has; call when it is readable. */
    enum repl_status (*consume)(void *src, char *err, size_t errlen);
    int (*socket)(const void *src);
    /* A standby status update; now_pg_us: µs since 2000-01-01. */
    enum repl_status (*send_status)(void *src, uint64_t write_lsn, uint64_t flush_lsn,
                                    uint64_t apply_lsn, int64_t now_pg_us, bool reply_requested,
                                    char *err, size_t errlen);
};

/* How a publication check went. */
enum relay_check {
    RELAY_CHECK_RUNNING, /* no answer yet */
    RELAY_CHECK_PASSED,  /* the table is still in the publication */
    RELAY_CHECK_GONE,    /* it is not (or the publication is gone): err says what to do */
    RELAY_CHECK_FAILED,  /* the question could not be asked: err says why */
};

/* Checks beside the stream (docs/protocol.md#r10, #p1), on connections of
 * their own that never make the loop wait; the argument is the watch's own
 * handle. */
struct relay_watch_ops {
    /* Fills at most n entries with the descriptors the watch waits on (for
     * the loop's poll()); returns how many. */
    int (*pollfds)(void *watch, struct pollfd *pfd, int n);
    /* Starts a publication check (connecting first when needed); at most one
     * runs at a time. */
    void (*check_start)(void *watch);
    /* Drives the running check; its outcome, or RELAY_CHECK_RUNNING until it
     * has one. */
    enum relay_check (*check_result)(void *watch, char *err, size_t errlen);
    /* Asks for a heartbeat (sent once its connection is up; skipped while
     * the last one still runs). */
    void (*beat)(void *watch);
    /* Drives the heartbeat's connection; REPL_ERETRY (err filled, to be
     * logged) when it failed: the next beat connects again. */
    enum repl_status (*beat_progress)(void *watch, char *err, size_t errlen);
};

/* Re-emit requests (cdc/reemit_serve.h): the rows of a request's range,
 * read from the table on a connection of their own and handed to the loop
 * one at a time through hooks; the argument is the server's own handle. */
struct relay_reemit_ops {
    enum reemit_result (*serve)(void *reemit, const struct reemit_request *req,
                                const struct reemit_hooks *hooks, uint64_t *sent, uint64_t *skipped,
                                char *err, size_t errlen);
};

/* libpq's replication connection (cdc/repl.c); the handle is a struct repl_conn. */
extern const struct relay_source_ops repl_source_ops;

#endif
