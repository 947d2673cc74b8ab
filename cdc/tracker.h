/*
 * Delivery watermark (docs/protocol.md#r1 to #r3): which WAL position may be confirmed
 * to Postgres. Transactions are registered in commit order; each counts its
 * produced events until their delivery reports arrive. The safe LSN is the
 * commit end_lsn of the newest transaction that, with every earlier one, is
 * fully delivered. Pure bookkeeping: no I/O, no clocks, not thread-safe (the
 * relay calls it from its one loop thread, delivery reports included).
 */
#ifndef ORDERS_CDC_TRACKER_H
#define ORDERS_CDC_TRACKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "latency.h"

struct tracker;

/* Returns new, starting with safe LSN start_lsn; free with tracker_free. */
struct tracker *tracker_new(uint64_t start_lsn);
void tracker_free(struct tracker *t); /* NULL-safe */

/* Opens a transaction (after a Begin). Returns its sequence number, which
 * identifies it in tracker_add_event/tracker_ack. At most one is open. */
uint64_t tracker_begin(struct tracker *t);

/* The transaction's times, for the caller to fill (the relay: Unix
 * microseconds); commit_us is what tracker_oldest_pending_time reports.
 * NULL for a sequence number no longer (or not yet) in the tracker. */
struct latency_times *tracker_times(struct tracker *t, uint64_t seq);

/* Counts one more in-flight event in the open transaction. */
void tracker_add_event(struct tracker *t, uint64_t seq);

/* Closes the open transaction with its commit end_lsn. end_lsn must be
 * greater than every earlier one; returns false (and changes nothing) if not. */
bool tracker_commit(struct tracker *t, uint64_t seq, uint64_t end_lsn);

/* Records a delivery report. ok=false marks the tracker failed: the safe LSN
 * then never moves again until tracker_reset. Returns false for a report
 * that matches no in-flight event (a bug upstream; the caller rewinds). */
bool tracker_ack(struct tracker *t, uint64_t seq, bool ok);

/* True once the transaction is committed, had events, and Kafka has reported
 * every one of them: what the caller checks after tracker_ack and after
 * tracker_commit, so that each transaction is seen complete exactly once.
 * Stays true until the transaction is popped (tracker_safe_lsn). */
bool tracker_txn_delivered(const struct tracker *t, uint64_t seq);

/* R3: a keepalive's walEnd (or a non-transactional message's LSN) may be
 * confirmed only when no transaction is open and nothing is in flight. */
void tracker_note_server_position(struct tracker *t, uint64_t wal_end);

/* The position that may be sent as flush LSN now. Never decreases. */
uint64_t tracker_safe_lsn(struct tracker *t);

/* Commit end_lsn of the newest transaction registered (or the server
 * position noted while idle). A transaction whose commit starts before it was
 * already produced: a re-sent copy must be skipped. */
uint64_t tracker_last_end_lsn(const struct tracker *t);

/* The commit time of the oldest transaction that still has events in flight
 * (produced, no delivery report yet). Returns false, leaving *out alone,
 * when nothing is in flight. Does not pop delivered transactions. */
bool tracker_oldest_pending_time(const struct tracker *t, int64_t *out);

/* True when no transaction is open and every event has been delivered. */
bool tracker_idle(const struct tracker *t);
bool tracker_failed(const struct tracker *t);
bool tracker_in_transaction(const struct tracker *t);
uint64_t tracker_inflight_events(const struct tracker *t);

/* Gives up the open transaction (its stream broke before Commit): events
 * already produced for it still count until reported, but it will never move
 * the safe LSN. The server re-sends it whole. */
void tracker_abandon_open(struct tracker *t);

/* Forgets everything in flight (after a rewind); keeps the safe LSN. */
void tracker_reset(struct tracker *t);

#endif
