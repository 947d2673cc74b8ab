/*
 * Clocks, stop-aware sleeps and reconnect backoff shared by both relay loops
 * (stream mode in relay.c, poll mode in poll_relay.c), so their retry
 * behaviour cannot drift apart.
 */
#ifndef ORDERS_CDC_PACE_H
#define ORDERS_CDC_PACE_H

#include <stdint.h>

#include "relay.h"

/* Wall clock, microseconds since the epoch. */
int64_t pace_now_us(void);

/* Monotonic clock, microseconds. */
int64_t pace_monotonic_us(void);

/* Sleeps ms, waking early when a stop was requested (cfg->stop, cfg->stop_fd):
 * a relay in backoff must still stop at once. */
void pace_sleep_ms(int ms, const struct relay_config *cfg);

/* Next reconnect delay: 100 ms doubling up to max_ms, with full jitter in the
 * upper half so a fleet of relays does not reconnect in step. */
int pace_backoff_next(int current_ms, int max_ms);

#endif
