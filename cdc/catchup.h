/*
 * Catch-up progress (docs/observability.md): decides when the relay is far
 * enough behind the server's WAL to report progress, and computes the rate,
 * the WAL still to read and the time left. Pure: the caller passes the
 * clock, positions and counters in, and does the logging.
 */
#ifndef ORDERS_CDC_CATCHUP_H
#define ORDERS_CDC_CATCHUP_H

#include <stdbool.h>
#include <stdint.h>

#define CATCHUP_INTERVAL_US INT64_C(5000000)
#define CATCHUP_ENTER_BYTES (UINT64_C(16) << 20) /* behind more than this: start reporting */
#define CATCHUP_DONE_BYTES  (UINT64_C(1) << 20)  /* behind less than this: caught up */

struct catchup {
    int64_t interval_us;
    uint64_t enter_bytes;
    uint64_t done_bytes;
    bool armed;  /* start at the next update if behind at all (--start-lsn) */
    bool active; /* reporting */
    int64_t started_us, last_us;
    uint64_t start_events, last_events;
    uint64_t last_lsn;
};

enum catchup_event {
    CATCHUP_NONE,     /* nothing to say */
    CATCHUP_STARTED,  /* behind_bytes set */
    CATCHUP_PROGRESS, /* every field set */
    CATCHUP_DONE,     /* events and elapsed_s set */
};

struct catchup_report {
    uint64_t behind_bytes;
    double events_per_s;
    double eta_s; /* < 0: unknown (no WAL read during the last interval) */
    uint64_t events;
    double elapsed_s;
};

void catchup_init(struct catchup *c, int64_t interval_us, uint64_t enter_bytes,
                  uint64_t done_bytes);

/* The next update starts reporting when the relay is more than done_bytes
 * behind (not enter_bytes): a replay asked for with --start-lsn. */
void catchup_arm(struct catchup *c);

/*
 * One observation: now_us (any monotonic clock), the furthest position
 * received, the server's WAL end as known, and the events received so far.
 * Returns what to report; *out is filled as the event says.
 */
enum catchup_event catchup_update(struct catchup *c, int64_t now_us, uint64_t received_lsn,
                                  uint64_t server_lsn, uint64_t events, struct catchup_report *out);

#endif
