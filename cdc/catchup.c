/*
 * Hysteresis keeps the reports from flapping: reporting starts above
 * enter_bytes behind and stops below done_bytes. Rates are over the last
 * interval, so a slowdown shows at the next report.
 */
#include "catchup.h"

#include <string.h>

void catchup_init(struct catchup *c, int64_t interval_us, uint64_t enter_bytes, uint64_t done_bytes)
{
    memset(c, 0, sizeof(*c));
    c->interval_us = interval_us;
    c->enter_bytes = enter_bytes;
    c->done_bytes = done_bytes;
}

void catchup_arm(struct catchup *c)
{
    c->armed = true;
}

enum catchup_event catchup_update(struct catchup *c, int64_t now_us, uint64_t received_lsn,
                                  uint64_t server_lsn, uint64_t events, struct catchup_report *out)
{
    uint64_t behind = server_lsn > received_lsn ? server_lsn - received_lsn : 0;
    bool armed = c->armed;
    double dt;

    memset(out, 0, sizeof(*out));
    c->armed = false;
    if (!c->active) {
        if (behind <= c->enter_bytes && !(armed && behind > c->done_bytes))
            return CATCHUP_NONE;
        c->active = true;
        c->started_us = c->last_us = now_us;
        c->start_events = c->last_events = events;
        c->last_lsn = received_lsn;
        out->behind_bytes = behind;
        return CATCHUP_STARTED;
    }
    if (behind < c->done_bytes) {
        c->active = false;
        out->events = events - c->start_events;
        out->elapsed_s = (double)(now_us - c->started_us) / 1e6;
        return CATCHUP_DONE;
    }
    if (now_us - c->last_us < c->interval_us)
        return CATCHUP_NONE;
    dt = (double)(now_us - c->last_us) / 1e6;
    out->behind_bytes = behind;
    out->events_per_s = (double)(events - c->last_events) / dt;
    out->eta_s = -1;
    if (received_lsn > c->last_lsn)
        out->eta_s = (double)behind / ((double)(received_lsn - c->last_lsn) / dt);
    c->last_us = now_us;
    c->last_events = events;
    c->last_lsn = received_lsn;
    return CATCHUP_PROGRESS;
}
