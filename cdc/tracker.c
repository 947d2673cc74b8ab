/*
 * A ring of transactions in commit order. The front is popped once it is
 * committed and has no events left in flight; the safe LSN is the end_lsn of
 * the last one popped. Memory grows with the number of transactions in
 * flight, not with their size: a million-row transaction is one entry.
 */
#include "tracker.h"

#include <stdlib.h>

#include "xmem.h"

struct txn {
    uint64_t end_lsn;
    uint64_t pending; /* events produced and not yet acknowledged */
    uint64_t events;  /* events produced */
    struct latency_times times;
    bool committed;
};

struct tracker {
    struct txn *ring;
    size_t cap;   /* power of two */
    size_t count; /* entries in the ring */
    size_t head;  /* index of the oldest entry */
    uint64_t head_seq;
    uint64_t safe_lsn;
    uint64_t last_end_lsn;
    uint64_t inflight;
    bool open;
    bool failed;
};

struct tracker *tracker_new(uint64_t start_lsn)
{
    struct tracker *t = xcalloc(1, sizeof(*t));

    t->cap = 64;
    t->ring = xcalloc(t->cap, sizeof(*t->ring));
    t->safe_lsn = start_lsn;
    t->last_end_lsn = start_lsn;
    return t;
}

void tracker_free(struct tracker *t)
{
    if (t == NULL)
        return;
    free(t->ring);
    free(t);
}

static struct txn *txn_at(const struct tracker *t, uint64_t seq)
{
    if (seq < t->head_seq || seq - t->head_seq >= t->count)
        return NULL;
    return &t->ring[(t->head + (size_t)(seq - t->head_seq)) & (t->cap - 1)];
}

static void grow(struct tracker *t)
{
    struct txn *ring = xcalloc(t->cap * 2, sizeof(*ring));

    for (size_t i = 0; i < t->count; i++)
        ring[i] = t->ring[(t->head + i) & (t->cap - 1)];
    free(t->ring);
    t->ring = ring;
    t->cap *= 2;
    t->head = 0;
}

uint64_t tracker_begin(struct tracker *t)
{
    struct txn *x;

    if (t->count == t->cap)
        grow(t);
    x = &t->ring[(t->head + t->count) & (t->cap - 1)];
    x->end_lsn = 0;
    x->pending = 0;
    x->events = 0;
    x->times = (struct latency_times){0};
    x->committed = false;
    t->count++;
    t->open = true;
    return t->head_seq + t->count - 1;
}

struct latency_times *tracker_times(struct tracker *t, uint64_t seq)
{
    struct txn *x = txn_at(t, seq);

    return x != NULL ? &x->times : NULL;
}

void tracker_add_event(struct tracker *t, uint64_t seq)
{
    struct txn *x = txn_at(t, seq);

    if (x == NULL)
        return;
    x->pending++;
    x->events++;
    t->inflight++;
}

bool tracker_commit(struct tracker *t, uint64_t seq, uint64_t end_lsn)
{
    struct txn *x = txn_at(t, seq);

    if (x == NULL || x->committed || end_lsn <= t->last_end_lsn)
        return false;
    x->end_lsn = end_lsn;
    x->committed = true;
    t->last_end_lsn = end_lsn;
    t->open = false;
    return true;
}

bool tracker_ack(struct tracker *t, uint64_t seq, bool ok)
{
    struct txn *x = txn_at(t, seq);

    if (x == NULL || x->pending == 0)
        return false;
    x->pending--;
    t->inflight--;
    if (!ok)
        t->failed = true;
    return true;
}

bool tracker_txn_delivered(const struct tracker *t, uint64_t seq)
{
    const struct txn *x = txn_at(t, seq);

    return x != NULL && x->committed && x->events > 0 && x->pending == 0;
}

void tracker_note_server_position(struct tracker *t, uint64_t wal_end)
{
    /* Popping first matters: committed transactions may still sit in the
     * ring with nothing pending, and they are what "idle" is about. */
    (void)tracker_safe_lsn(t);
    if (!tracker_idle(t) || t->failed)
        return;
    if (wal_end > t->safe_lsn)
        t->safe_lsn = wal_end;
    if (wal_end > t->last_end_lsn)
        t->last_end_lsn = wal_end;
}

uint64_t tracker_safe_lsn(struct tracker *t)
{
    if (t->failed)
        return t->safe_lsn;
    while (t->count > 0) {
        struct txn *x = &t->ring[t->head];

        if (!x->committed || x->pending > 0)
            break;
        if (x->end_lsn > t->safe_lsn)
            t->safe_lsn = x->end_lsn;
        t->head = (t->head + 1) & (t->cap - 1);
        t->head_seq++;
        t->count--;
    }
    return t->safe_lsn;
}

uint64_t tracker_last_end_lsn(const struct tracker *t)
{
    return t->last_end_lsn;
}

bool tracker_oldest_pending_time(const struct tracker *t, int64_t *out)
{
    /* Usually the head: delivered transactions before it are popped by
     * tracker_safe_lsn on every loop turn. */
    for (size_t i = 0; i < t->count && t->inflight > 0; i++) {
        const struct txn *x = &t->ring[(t->head + i) & (t->cap - 1)];

        if (x->pending > 0) {
            *out = x->times.commit_us;
            return true;
        }
    }
    return false;
}

bool tracker_idle(const struct tracker *t)
{
    return !t->open && t->inflight == 0 && t->count == 0;
}

bool tracker_failed(const struct tracker *t)
{
    return t->failed;
}

bool tracker_in_transaction(const struct tracker *t)
{
    return t->open;
}

uint64_t tracker_inflight_events(const struct tracker *t)
{
    return t->inflight;
}

void tracker_abandon_open(struct tracker *t)
{
    struct txn *x;

    if (!t->open)
        return;
    x = txn_at(t, t->head_seq + t->count - 1);
    x->committed = true;
    x->end_lsn = 0; /* popped when its reports are in, without moving safe_lsn */
    t->open = false;
}

void tracker_reset(struct tracker *t)
{
    /* Sequence numbers keep increasing so a late report from the old
     * producer can never be mistaken for one of the new stream's events. */
    t->head_seq += t->count;
    t->head = 0;
    t->count = 0;
    t->inflight = 0;
    t->open = false;
    t->failed = false;
    t->last_end_lsn = t->safe_lsn;
}
