/*
 * What a standby status update reports (docs/protocol.md#r2, #r3, #r9,
 * #r10): the write and flush positions, from the delivery watermark and what
 * may only hold it back (the state file, the replay window, the publication
 * check), and the keepalive position held while deliveries are pending.
 * Pure: no I/O, no clocks (the caller passes now), no logging; the relay
 * saves, sends and logs what these functions decide.
 */
#ifndef ORDERS_CDC_CONFIRM_H
#define ORDERS_CDC_CONFIRM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Samples of the delivered position kept for --replay-window. */
#define CONFIRM_SAMPLES 4096

struct confirm {
    /* settings (confirm_init) */
    bool state_file;   /* a position is saved before it is confirmed (R9) */
    int64_t window_us; /* --replay-window; 0: none */

    uint64_t saved;          /* the position the state file holds */
    uint64_t pub_verified;   /* newest position a passed publication check covers (R10) */
    int64_t pub_started_us;  /* when the last publication check started (0: never) */
    uint64_t held_keepalive; /* keepalive walEnd waiting for deliveries (R3); 0: none */

    /* --replay-window: (time, delivered position) samples, oldest first */
    struct {
        int64_t at_us;
        uint64_t lsn;
    } samples[CONFIRM_SAMPLES];
    size_t nsamples;
    uint64_t window_held; /* what the server may forget up to */
};

/* Sets the settings and forgets every position. */
void confirm_init(struct confirm *c, bool state_file, int64_t window_us);

/* The stream's first start: the state file holds saved (0: none), the slot
 * was at slot_confirmed (0 when unknown), the stream starts at start. */
void confirm_start(struct confirm *c, uint64_t saved, uint64_t slot_confirmed, uint64_t start);

/* One status update. */
struct confirm_status {
    uint64_t save;  /* write this to the state file first, then send; 0: nothing new to save */
    uint64_t write; /* newest position received, at least flush */
    uint64_t flush; /* what the server may consider handled */
    /* delivered, held back by nothing: what `cdc-relay reemit --wait` reads
     * (pg_stat_replication.replay_lsn); the server frees nothing by it */
    uint64_t apply;
};

/*
 * The update to send at now_us (monotonic) when delivered is the delivery
 * watermark (tracker_safe_lsn) and received the newest position received.
 * flush is delivered, held back by the replay window (the newest delivered
 * position at least the window old) and by the publication check; apply is
 * delivered as it is. Takes a
 * replay-window sample (at most one per window/CONFIRM_SAMPLES, at least 1 s
 * apart), so call it once per update sent.
 */
struct confirm_status confirm_next(struct confirm *c, uint64_t delivered, uint64_t received,
                                   int64_t now_us);

/* The state file now holds lsn (call after a successful save). */
void confirm_saved(struct confirm *c, uint64_t lsn);

/*
 * The publication check (R10): due when a position past what the last check
 * covered waits to be confirmed and at least interval_us passed since the
 * last check started. A check covers every position received before it
 * started.
 */
bool confirm_pub_check_due(const struct confirm *c, uint64_t delivered, int64_t now_us,
                           int64_t interval_us);

/* A check starts at now_us: returns the position it covers if it passes
 * (the newest received, at least delivered). */
uint64_t confirm_pub_check_started(struct confirm *c, uint64_t delivered, uint64_t received,
                                   int64_t now_us);

/* A check (or the publication validation of a new connection) found the
 * table published: positions up to covered may be confirmed. Never lowers. */
void confirm_pub_verified(struct confirm *c, uint64_t covered);

/*
 * R3: a keepalive's walEnd is confirmable only while nothing is in flight.
 * One that came while events were in flight is held here and handed to the
 * tracker once they are delivered; a Begin drops it (that transaction's
 * Commit supersedes it).
 */
void confirm_hold_keepalive(struct confirm *c, uint64_t wal_end);
void confirm_drop_keepalive(struct confirm *c);

#endif
