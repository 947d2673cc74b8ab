/*
 * One Kafka transaction per batch of whole source transactions, each ending
 * with the slot's checkpoint record. The order inside eos_commit is the
 * point: checkpoint into the transaction, commit, and only then release the
 * tracker hold, which is what lets the relay save the state file and
 * confirm the position to Postgres.
 */
#include "eos.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lsn.h"
#include "xmem.h"

/* The broker's default transaction.max.timeout.ms: the longest a Kafka
 * transaction (and so the relaying of one source transaction) may take. */
#define EOS_TXN_TIMEOUT_MS   "900000"
#define EOS_INIT_TIMEOUT_MS  30000
#define EOS_READ_TIMEOUT_MS  30000
#define EOS_COMMIT_STEP_MS   1000
#define EOS_ABORT_TIMEOUT_MS 5000
#define EOS_DEFAULT_PROPS    3

struct eos {
    struct eos_config cfg;
    struct sink *sink; /* borrowed between eos_attach and eos_detach */
    struct eos_batch batch;
    uint64_t hold_seq; /* tracker transaction held until the commit */
    uint64_t commits;
    char systemid[32];
    char txn_id[160];
    struct sink_prop *props;
    size_t nprops;
};

struct eos *eos_new(const struct eos_config *cfg)
{
    struct eos *e = xcalloc(1, sizeof(*e));

    e->cfg = *cfg;
    snprintf(e->txn_id, sizeof(e->txn_id), "cdc-relay-%s", cfg->slot);
    e->nprops = EOS_DEFAULT_PROPS + cfg->nprops;
    e->props = xcalloc(e->nprops, sizeof(*e->props));
    e->props[0] = (struct sink_prop){"transactional.id", e->txn_id};
    e->props[1] = (struct sink_prop){"transaction.timeout.ms", EOS_TXN_TIMEOUT_MS};
    /* librdkafka requires message.timeout.ms <= transaction.timeout.ms (the
     * at-least-once default of 0, "never", is refused). */
    e->props[2] = (struct sink_prop){"message.timeout.ms", EOS_TXN_TIMEOUT_MS};
    for (size_t i = 0; i < cfg->nprops; i++)
        e->props[EOS_DEFAULT_PROPS + i] = cfg->props[i];
    return e;
}

void eos_free(struct eos *e)
{
    if (e == NULL)
        return;
    free(e->props);
    free(e);
}

const struct sink_prop *eos_producer_props(const struct eos *e, size_t *nprops)
{
    *nprops = e->nprops;
    return e->props;
}

const char *eos_transactional_id(const struct eos *e)
{
    const char *id = NULL;

    for (size_t i = 0; i < e->nprops; i++)
        if (strcmp(e->props[i].name, "transactional.id") == 0)
            id = e->props[i].value;
    return id;
}

static enum eos_result from_txn(enum sink_txn_status st)
{
    switch (st) {
    case SINK_TXN_OK:
        return EOS_OK;
    case SINK_TXN_RETRY:
        return EOS_RETRY;
    case SINK_TXN_ABORT:
        return EOS_REWIND;
    case SINK_TXN_FENCED:
        return EOS_FENCED;
    case SINK_TXN_FATAL:
        break;
    }
    return EOS_FATAL;
}

enum eos_result eos_attach(struct eos *e, struct sink *s, const char *systemid,
                           uint64_t *checkpoint_lsn, char *err, size_t errlen)
{
    struct sink_checkpoint cp;
    enum eos_result res;
    int rc;

    *checkpoint_lsn = 0;
    res = from_txn(sink_txn_init(s, EOS_INIT_TIMEOUT_MS, err, errlen));
    if (res != EOS_OK)
        return res == EOS_REWIND ? EOS_RETRY : res;
    rc = sink_checkpoint_topic_ensure(s, e->cfg.checkpoint_topic, EOS_INIT_TIMEOUT_MS, err, errlen);
    if (rc < 0)
        return EOS_RETRY;
    if (rc == 1)
        log_info("created checkpoint topic %s (1 partition, cleanup.policy=compact)",
                 e->cfg.checkpoint_topic);
    /* After init_transactions: a transaction an older producer left open is
     * aborted by now, so the read is not held at its start. */
    rc = sink_checkpoint_read(e->cfg.brokers, e->cfg.props, e->cfg.nprops, e->cfg.checkpoint_topic,
                              e->cfg.slot, EOS_READ_TIMEOUT_MS, &cp, err, errlen);
    if (rc < 0)
        return EOS_RETRY;
    if (rc == 1) {
        if (strcmp(cp.systemid, systemid) != 0) {
            snprintf(err, errlen,
                     "checkpoint of slot \"%s\" in topic %s was written against another cluster "
                     "(system identifier %s, this server is %s): a failover or restore; its "
                     "positions mean nothing here. Check for a gap, then use another "
                     "--checkpoint-topic",
                     e->cfg.slot, e->cfg.checkpoint_topic, cp.systemid, systemid);
            return EOS_FATAL;
        }
        *checkpoint_lsn = cp.end_lsn;
    }
    snprintf(e->systemid, sizeof(e->systemid), "%s", systemid);
    e->sink = s;
    e->batch.open = false;
    return EOS_OK;
}

void eos_detach(struct eos *e)
{
    e->sink = NULL;
    e->batch.open = false;
}

bool eos_attached(const struct eos *e)
{
    return e->sink != NULL;
}

enum eos_result eos_before_produce(struct eos *e, struct tracker *t, uint64_t seq, int64_t now_us,
                                   char *err, size_t errlen)
{
    if (!e->batch.open) {
        enum eos_result res = from_txn(sink_txn_begin(e->sink, err, errlen));

        if (res != EOS_OK)
            return res == EOS_RETRY ? EOS_FATAL : res; /* begin has no retriable errors */
        /* One extra pending count on the batch's first source transaction:
         * the tracker pops in order, so nothing from here on is confirmable
         * before the commit releases it. */
        tracker_add_event(t, seq);
        e->hold_seq = seq;
        e->batch.open = true;
        e->batch.events = 0;
        e->batch.opened_us = now_us;
    }
    e->batch.events++;
    return EOS_OK;
}

bool eos_open(const struct eos *e)
{
    return e->batch.open;
}

bool eos_batch_due(const struct eos_batch *b, uint64_t max_events, int max_ms, int64_t now_us)
{
    return b->open && (b->events >= max_events || now_us - b->opened_us >= (int64_t)max_ms * 1000);
}

bool eos_due(const struct eos *e, int64_t now_us)
{
    return eos_batch_due(&e->batch, e->cfg.max_events, e->cfg.max_ms, now_us);
}

int64_t eos_wait_us(const struct eos *e, int64_t now_us)
{
    int64_t left;

    if (!e->batch.open)
        return INT64_MAX;
    left = e->batch.opened_us + (int64_t)e->cfg.max_ms * 1000 - now_us;
    return left > 0 ? left : 0;
}

enum eos_result eos_commit(struct eos *e, struct tracker *t, uint64_t end_lsn,
                           void (*wait)(void *arg), void *arg, char *err, size_t errlen)
{
    struct sink_checkpoint cp;
    enum sink_status pst;
    enum eos_result res;

    if (!e->batch.open)
        return EOS_OK;
    memset(&cp, 0, sizeof(cp));
    snprintf(cp.slot, sizeof(cp.slot), "%s", e->cfg.slot);
    snprintf(cp.systemid, sizeof(cp.systemid), "%s", e->systemid);
    cp.end_lsn = end_lsn;
    pst = sink_checkpoint_produce(e->sink, e->cfg.checkpoint_topic, &cp, err, errlen);
    if (pst != SINK_OK) {
        eos_abort(e);
        return pst == SINK_EPERMANENT ? EOS_FATAL : EOS_REWIND;
    }
    /* Resumable steps (rdkafka.h: "On timeout the application may call the
     * function again"), so a slow commit does not silence the relay. */
    while ((res = from_txn(sink_txn_commit(e->sink, EOS_COMMIT_STEP_MS, err, errlen))) == EOS_RETRY)
        wait(arg);
    if (res == EOS_REWIND) {
        eos_abort(e);
        return EOS_REWIND;
    }
    if (res != EOS_OK)
        return res;
    e->batch.open = false;
    e->commits++;
    tracker_ack(t, e->hold_seq, true);
    return EOS_OK;
}

void eos_abort(struct eos *e)
{
    char err[512];

    if (e->sink != NULL && e->batch.open &&
        sink_txn_abort(e->sink, EOS_ABORT_TIMEOUT_MS, err, sizeof(err)) != SINK_TXN_OK)
        log_warn("%s; the next producer's init_transactions aborts it", err);
    e->batch.open = false;
}

uint64_t eos_commits(const struct eos *e)
{
    return e->commits;
}
