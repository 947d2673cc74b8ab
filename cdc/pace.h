/*
 * Clocks, stop-aware sleeps, the stop deadline and reconnect backoff shared
 * by both relay loops (stream mode in cdc/stream.c and cdc/relay.c, poll mode
 * in cdc/poll_relay.c), so their retry and stop behaviour cannot drift apart.
 */
#ifndef ORDERS_CDC_PACE_H
#define ORDERS_CDC_PACE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* A stop request (SIGTERM, SIGINT): the flag the signal handler sets and the
 * read end of its self-pipe (-1: none), so that a wait can end early. */
struct stop_signal {
    volatile sig_atomic_t *flag; /* NULL: never */
    int fd;
};

/* Wall clock, microseconds since the epoch. */
int64_t pace_now_us(void);

/* Monotonic clock, microseconds. */
int64_t pace_monotonic_us(void);

/* Sleeps ms, waking early when a stop was requested: a relay in backoff must
 * still stop at once. */
void pace_sleep_ms(int ms, const struct stop_signal *stop);

/* Whether a stop was requested; the first time one is seen, *deadline_us
 * becomes now_us + timeout_ms (--shutdown-timeout), the time the relay
 * allows itself to finish what it started. */
bool pace_stop_requested(const struct stop_signal *stop, int timeout_ms, int64_t now_us,
                         int64_t *deadline_us);

/* Next reconnect delay: 100 ms doubling up to max_ms, with full jitter in the
 * upper half so a fleet of relays does not reconnect in step. */
int pace_backoff_next(int current_ms, int max_ms);

#endif
