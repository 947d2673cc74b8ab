/*
 * The confirmed position only ever comes from the tracker's watermark; every
 * other input here can only hold it back. pg_recvlogical reports flush as
 * what it fsynced; the relay reports what Kafka acknowledged, saved first.
 */
#include "confirm.h"

#include <string.h>

void confirm_init(struct confirm *c, bool state_file, int64_t window_us)
{
    memset(c, 0, sizeof(*c));
    c->state_file = state_file;
    c->window_us = window_us;
}

void confirm_start(struct confirm *c, uint64_t saved, uint64_t slot_confirmed, uint64_t start)
{
    c->saved = saved;
    /* Until a sample is old enough, the server keeps what it already has. */
    c->window_held = slot_confirmed > 0 ? slot_confirmed : start;
}

/*
 * --replay-window: the position the server may forget up to is the newest
 * delivered position at least the window old, so the last window of WAL
 * stays in the slot for a replay (--start-lsn).
 */
static uint64_t window_hold(struct confirm *c, uint64_t delivered, int64_t now_us)
{
    int64_t spacing = c->window_us / CONFIRM_SAMPLES;
    size_t keep = 0;

    if (spacing < 1000000)
        spacing = 1000000;
    if (c->nsamples == 0 || (c->samples[c->nsamples - 1].lsn != delivered &&
                             now_us - c->samples[c->nsamples - 1].at_us >= spacing)) {
        if (c->nsamples == CONFIRM_SAMPLES) {
            memmove(&c->samples[0], &c->samples[1], sizeof(c->samples[0]) * (CONFIRM_SAMPLES - 1));
            c->nsamples--;
        }
        c->samples[c->nsamples].at_us = now_us;
        c->samples[c->nsamples].lsn = delivered;
        c->nsamples++;
    }
    while (keep < c->nsamples && c->samples[keep].at_us <= now_us - c->window_us)
        keep++;
    if (keep > 0) {
        /* samples[keep-1] is the newest old enough; older ones are done. */
        c->window_held = c->samples[keep - 1].lsn;
        memmove(&c->samples[0], &c->samples[keep - 1],
                sizeof(c->samples[0]) * (c->nsamples - keep + 1));
        c->nsamples -= keep - 1;
    }
    return c->window_held;
}

struct confirm_status confirm_next(struct confirm *c, uint64_t delivered, uint64_t received,
                                   int64_t now_us)
{
    struct confirm_status st = {.flush = delivered, .apply = delivered};

    /* R9: on disk before the server may forget it. */
    if (c->state_file && delivered > c->saved)
        st.save = delivered;
    if (c->window_us > 0)
        st.flush = window_hold(c, delivered, now_us);
    if (st.flush > c->pub_verified)
        st.flush = c->pub_verified;
    st.write = received > delivered ? received : delivered;
    return st;
}

void confirm_saved(struct confirm *c, uint64_t lsn)
{
    if (lsn > c->saved)
        c->saved = lsn;
}

bool confirm_pub_check_due(const struct confirm *c, uint64_t delivered, int64_t now_us,
                           int64_t interval_us)
{
    return delivered > c->pub_verified && now_us - c->pub_started_us >= interval_us;
}

uint64_t confirm_pub_check_started(struct confirm *c, uint64_t delivered, uint64_t received,
                                   int64_t now_us)
{
    c->pub_started_us = now_us;
    return received > delivered ? received : delivered;
}

void confirm_pub_verified(struct confirm *c, uint64_t covered)
{
    if (covered > c->pub_verified)
        c->pub_verified = covered;
}

void confirm_hold_keepalive(struct confirm *c, uint64_t wal_end)
{
    c->held_keepalive = wal_end;
}

void confirm_drop_keepalive(struct confirm *c)
{
    c->held_keepalive = 0;
}
