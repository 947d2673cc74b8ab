/*
 * Status-update cadence. Moving flush is worth telling the server soon (it
 * frees WAL and bounds duplicates after a crash), but not once per
 * transaction at catch-up speed, hence the minimum gap.
 */
#include "feedback.h"

bool feedback_due(const struct feedback_state *st, uint64_t flush, int64_t now_us)
{
    return feedback_wait_us(st, flush, now_us) == 0;
}

int64_t feedback_wait_us(const struct feedback_state *st, uint64_t flush, int64_t now_us)
{
    int64_t since = now_us - st->last_sent_us;
    int64_t wait;

    if (st->reply_requested || st->last_sent_us == 0)
        return 0;
    wait = st->interval_us - since;
    if (flush != st->last_sent_flush && st->min_gap_us - since < wait)
        wait = st->min_gap_us - since;
    return wait > 0 ? wait : 0;
}

void feedback_sent(struct feedback_state *st, uint64_t flush, int64_t now_us)
{
    st->last_sent_us = now_us;
    st->last_sent_flush = flush;
    st->reply_requested = false;
}
