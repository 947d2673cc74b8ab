/*
 * The Kafka side of --exactly-once: the producer's transactions, the
 * checkpoint record produced into each one, the compacted checkpoint topic
 * and the read_committed reader that finds the last checkpoint at start.
 * Works on a struct sink made with a transactional.id (cdc/sink_kafka.h);
 * cdc/eos.c decides when to begin, commit and abort.
 */
#ifndef ORDERS_CDC_EOS_KAFKA_H
#define ORDERS_CDC_EOS_KAFKA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "sink_kafka.h"

/*
 * Transactions (docs/protocol.md#k7). The producer must
 * have been made with a transactional.id. Each call blocks at most
 * timeout_ms (commit and abort: the operation goes on in the background
 * and the call may be repeated after SINK_TXN_RETRY, as rdkafka.h allows).
 */
enum sink_txn_status {
    SINK_TXN_OK = 0,
    SINK_TXN_RETRY,  /* timed out or retriable: call again */
    SINK_TXN_ABORT,  /* abortable: abort, then start over from the checkpoint */
    SINK_TXN_FENCED, /* a newer producer with the same transactional.id took over */
    SINK_TXN_FATAL,  /* the producer is unusable */
};

/* init_transactions: fences older producers with the same transactional.id
 * and aborts what they left open. */
enum sink_txn_status sink_txn_init(struct sink *s, int timeout_ms, char *err,
                                   size_t errlen) MUSTCHECK;
enum sink_txn_status sink_txn_begin(struct sink *s, char *err, size_t errlen) MUSTCHECK;
/* Flushes every message of the transaction (serving their delivery
 * reports), then commits it. */
enum sink_txn_status sink_txn_commit(struct sink *s, int timeout_ms, char *err,
                                     size_t errlen) MUSTCHECK;
enum sink_txn_status sink_txn_abort(struct sink *s, int timeout_ms, char *err,
                                    size_t errlen) MUSTCHECK;

/* The checkpoint record: key = slot, value = JSON
 * {"slot": "...", "end_lsn": "X/Y", "systemid": "..."}. */
struct sink_checkpoint {
    char slot[128];
    char systemid[32];
    uint64_t end_lsn; /* commit end LSN of the last source transaction in the batch */
};

/* Writes the JSON value into buf (NUL-terminated); returns its length, or 0
 * when it does not fit. Pure. */
size_t sink_checkpoint_format(const struct sink_checkpoint *cp, char *buf, size_t buflen);

/* Parses a checkpoint value. Pure; false (out untouched) when it is not one. */
bool sink_checkpoint_parse(const char *json, size_t len, struct sink_checkpoint *out);

/* Produces the checkpoint record into the open transaction (key cp->slot).
 * Its delivery report does not reach the sink_delivery_fn: a failure shows
 * as an abortable error of the commit. */
enum sink_status sink_checkpoint_produce(struct sink *s, const char *topic,
                                         const struct sink_checkpoint *cp, char *err,
                                         size_t errlen) MUSTCHECK;

/* Creates topic (1 partition, cleanup.policy=compact, the broker's default
 * replication factor) when the broker does not list it. Returns 1 created,
 * 0 already there, -1 error (err filled). */
int sink_checkpoint_topic_ensure(struct sink *s, const char *topic, int timeout_ms, char *err,
                                 size_t errlen) MUSTCHECK;

/*
 * Reads topic from the beginning to its last stable offset with a
 * read_committed consumer of its own (bootstrap brokers, then props: pass
 * the user's -X properties only) and returns the last checkpoint whose key
 * is slot: 1 found (*out filled), 0 none, -1 error (err filled; also when
 * the end is not reached within timeout_ms). Does not log.
 */
int sink_checkpoint_read(const char *brokers, const struct sink_prop *props, size_t nprops,
                         const char *topic, const char *slot, int timeout_ms,
                         struct sink_checkpoint *out, char *err, size_t errlen) MUSTCHECK;

#endif
