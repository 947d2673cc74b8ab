/*
 * --exactly-once: Kafka transactions aligned to Postgres transactions
 * (docs/protocol.md#k7, #k8). Events of whole source transactions go into one Kafka
 * transaction together with a checkpoint record {slot, end_lsn} on a
 * compacted topic; the relay confirms a position to Postgres only after the
 * commit. Keeps the open Kafka transaction's first source transaction held
 * in the tracker, so the safe LSN cannot pass an uncommitted batch. Never
 * splits a source transaction: the relay closes batches only between them.
 * Not thread-safe; logs only the checkpoint topic's creation.
 */
#ifndef ORDERS_CDC_EOS_H
#define ORDERS_CDC_EOS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "eos_kafka.h"
#include "tracker.h"

struct eos_config {
    const char *slot;
    const char *checkpoint_topic;
    const char *brokers;
    const struct sink_prop *props; /* the user's -X, borrowed for the life of the eos */
    size_t nprops;
    uint64_t max_events; /* close a batch after this many events ... */
    int max_ms;          /* ... or this long after its first event */
};

enum eos_result {
    EOS_OK = 0,
    EOS_RETRY,  /* broker not reachable yet: try again later */
    EOS_REWIND, /* transaction aborted: start over from the checkpoint */
    EOS_FENCED, /* another relay took over the transactional.id: exit */
    EOS_FATAL,  /* unusable producer or inconsistent checkpoint: exit */
};

/* Returns new (free with eos_free); copies cfg, not the strings. */
struct eos *eos_new(const struct eos_config *cfg);
void eos_free(struct eos *e); /* NULL-safe */

/* The producer properties for --exactly-once: transactional.id
 * cdc-relay-<slot>, transaction.timeout.ms and message.timeout.ms 900000,
 * then the user's -X (which override them). Borrowed until eos_free. */
const struct sink_prop *eos_producer_props(const struct eos *e, size_t *nprops);

/* The transactional.id in effect (the last one in eos_producer_props). */
const char *eos_transactional_id(const struct eos *e);

/*
 * On a new producer: init_transactions (fences older ones), creates the
 * checkpoint topic when missing (logged), then reads the slot's checkpoint
 * with a read_committed consumer. *checkpoint_lsn gets its end LSN (0 when
 * there is none). A checkpoint written against another cluster (systemid)
 * is EOS_FATAL. err says why for anything but EOS_OK.
 */
enum eos_result eos_attach(struct eos *e, struct sink *s, const char *systemid,
                           uint64_t *checkpoint_lsn, char *err, size_t errlen) MUSTCHECK;

/* The producer is going away (rewind): forget it and the open batch. */
void eos_detach(struct eos *e);
bool eos_attached(const struct eos *e);

/* Before producing an event of source transaction seq: opens a Kafka
 * transaction when none is open and holds seq in the tracker until commit. */
enum eos_result eos_before_produce(struct eos *e, struct tracker *t, uint64_t seq, int64_t now_us,
                                   char *err, size_t errlen) MUSTCHECK;

/* True when a Kafka transaction is open. */
bool eos_open(const struct eos *e);

/* True when the open batch reached max_events or max_ms. */
bool eos_due(const struct eos *e, int64_t now_us);

/* The batch-closing rule on its own, for tests. Pure. */
struct eos_batch {
    bool open;
    uint64_t events;
    int64_t opened_us;
};
bool eos_batch_due(const struct eos_batch *b, uint64_t max_events, int max_ms, int64_t now_us);

/* Microseconds until the open batch is due (INT64_MAX when none is open). */
int64_t eos_wait_us(const struct eos *e, int64_t now_us);

/*
 * Closes the open batch (call only between source transactions): produces
 * the checkpoint {slot, end_lsn}, commits (in steps of at most 1 s, calling
 * wait(arg) between them so the caller can keep Postgres answered), then
 * releases the tracker hold. EOS_REWIND after an abortable error (the
 * transaction was aborted).
 */
enum eos_result eos_commit(struct eos *e, struct tracker *t, uint64_t end_lsn,
                           void (*wait)(void *arg), void *arg, char *err, size_t errlen) MUSTCHECK;

/* Aborts the open transaction, best effort (a new producer's
 * init_transactions aborts it anyway). */
void eos_abort(struct eos *e);

/* Number of Kafka transactions committed since eos_new. */
uint64_t eos_commits(const struct eos *e);

#endif
