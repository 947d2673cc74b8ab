/*
 * When to send a standby status update ('r'), decided as a pure function of
 * the loop's state and the clock, so the rule is unit-tested (pg_recvlogical
 * once had this condition inverted). docs/protocol.md#r4.
 */
#ifndef ORDERS_CDC_FEEDBACK_H
#define ORDERS_CDC_FEEDBACK_H

#include <stdbool.h>
#include <stdint.h>

struct feedback_state {
    int64_t last_sent_us;     /* when the last update went out (0 = never) */
    uint64_t last_sent_flush; /* flush LSN it carried */
    bool reply_requested;     /* a keepalive asked for an answer */
    int64_t interval_us;      /* regular cadence (--status-interval) */
    int64_t min_gap_us;       /* least time between updates that only move flush */
};

/* True when an update is due at now_us with flush as the confirmable LSN:
 * a reply was requested, the interval elapsed, or flush moved and at least
 * min_gap_us passed since the last update. */
bool feedback_due(const struct feedback_state *st, uint64_t flush, int64_t now_us);

/* Microseconds until feedback_due would turn true on the clock alone. */
int64_t feedback_wait_us(const struct feedback_state *st, uint64_t flush, int64_t now_us);

/* Records that an update carrying flush went out at now_us. */
void feedback_sent(struct feedback_state *st, uint64_t flush, int64_t now_us);

#endif
