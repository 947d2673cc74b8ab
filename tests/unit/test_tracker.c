/* The delivery watermark: confirm only what Kafka acknowledged, in order. */
#include "cdc/tracker.h"
#include "unit/check.h"

static void test_in_order_acks(void)
{
    struct tracker *t = tracker_new(100);
    uint64_t a, b;

    CHECK_EQ_U64(tracker_safe_lsn(t), 100);
    a = tracker_begin(t);
    tracker_add_event(t, a);
    tracker_add_event(t, a);
    CHECK(tracker_commit(t, a, 200));
    b = tracker_begin(t);
    tracker_add_event(t, b);
    CHECK(tracker_commit(t, b, 300));
    CHECK_EQ_U64(tracker_safe_lsn(t), 100);
    CHECK(tracker_ack(t, a, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 100); /* one of a's two events still out */
    CHECK(tracker_ack(t, a, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 200);
    CHECK(tracker_ack(t, b, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 300);
    CHECK(tracker_idle(t));
    tracker_free(t);
}

static void test_out_of_order_acks_wait_for_the_oldest(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t a = tracker_begin(t);

    tracker_add_event(t, a);
    CHECK(tracker_commit(t, a, 10));
    uint64_t b = tracker_begin(t);
    tracker_add_event(t, b);
    CHECK(tracker_commit(t, b, 20));
    CHECK(tracker_ack(t, b, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 0); /* b is done but a is not: never past a */
    CHECK(tracker_ack(t, a, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 20);
    tracker_free(t);
}

static void test_open_transaction_holds_back(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t a = tracker_begin(t);

    tracker_add_event(t, a);
    CHECK(tracker_ack(t, a, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 0); /* delivered, but not committed yet */
    CHECK(tracker_in_transaction(t));
    tracker_note_server_position(t, 500);
    CHECK_EQ_U64(tracker_safe_lsn(t), 0); /* R3: never inside a transaction */
    CHECK(tracker_commit(t, a, 40));
    CHECK_EQ_U64(tracker_safe_lsn(t), 40);
    tracker_free(t);
}

static void test_empty_transaction_is_done_at_commit(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t a = tracker_begin(t);

    CHECK(tracker_commit(t, a, 70));
    CHECK_EQ_U64(tracker_safe_lsn(t), 70);
    tracker_free(t);
}

static void test_keepalive_only_when_idle(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t a = tracker_begin(t);

    tracker_add_event(t, a);
    CHECK(tracker_commit(t, a, 10));
    tracker_note_server_position(t, 99);
    CHECK_EQ_U64(tracker_safe_lsn(t), 0); /* an event is in flight */
    CHECK(tracker_ack(t, a, true));
    tracker_note_server_position(t, 99);
    CHECK_EQ_U64(tracker_safe_lsn(t), 99);
    tracker_note_server_position(t, 50);
    CHECK_EQ_U64(tracker_safe_lsn(t), 99); /* never backwards */
    CHECK_EQ_U64(tracker_last_end_lsn(t), 99);
    tracker_free(t);
}

static void test_failure_freezes_until_reset(void)
{
    struct tracker *t = tracker_new(5);
    uint64_t a = tracker_begin(t);

    tracker_add_event(t, a);
    tracker_add_event(t, a);
    CHECK(tracker_commit(t, a, 10));
    CHECK(tracker_ack(t, a, true));
    CHECK(tracker_ack(t, a, false));
    CHECK(tracker_failed(t));
    CHECK_EQ_U64(tracker_safe_lsn(t), 5);
    tracker_note_server_position(t, 1000);
    CHECK_EQ_U64(tracker_safe_lsn(t), 5);
    tracker_reset(t);
    CHECK(!tracker_failed(t));
    CHECK(tracker_idle(t));
    CHECK_EQ_U64(tracker_last_end_lsn(t), 5);
    /* a late report from the old producer matches nothing */
    CHECK(!tracker_ack(t, a, true));
    tracker_free(t);
}

static void test_commit_must_move_forward(void)
{
    struct tracker *t = tracker_new(100);
    uint64_t a = tracker_begin(t);

    CHECK(!tracker_commit(t, a, 100));
    CHECK(!tracker_commit(t, a, 50));
    CHECK(tracker_commit(t, a, 101));
    CHECK(!tracker_commit(t, a, 102)); /* already committed */
    tracker_free(t);
}

static void test_abandoned_transaction_never_confirms(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t a = tracker_begin(t);

    tracker_add_event(t, a);
    tracker_abandon_open(t);
    CHECK(!tracker_in_transaction(t));
    CHECK(tracker_ack(t, a, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 0);
    CHECK(tracker_idle(t));
    uint64_t b = tracker_begin(t);
    tracker_add_event(t, b);
    CHECK(tracker_commit(t, b, 30));
    CHECK(tracker_ack(t, b, true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 30);
    tracker_free(t);
}

static void test_many_transactions_grow_the_ring(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t seqs[1000];

    for (int i = 0; i < 1000; i++) {
        seqs[i] = tracker_begin(t);
        tracker_add_event(t, seqs[i]);
        CHECK(tracker_commit(t, seqs[i], (uint64_t)(i + 1) * 10));
    }
    CHECK_EQ_U64(tracker_inflight_events(t), 1000);
    /* acknowledge in reverse: nothing moves until the first one lands */
    for (int i = 999; i > 0; i--)
        CHECK(tracker_ack(t, seqs[i], true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 0);
    CHECK(tracker_ack(t, seqs[0], true));
    CHECK_EQ_U64(tracker_safe_lsn(t), 10000);
    CHECK(!tracker_ack(t, seqs[0], true)); /* no double counting */
    tracker_free(t);
}

/* The lag metric: commit time of the oldest transaction with events in flight. */
static void test_oldest_pending_time(void)
{
    struct tracker *t = tracker_new(0);
    int64_t when = -1;
    uint64_t a, b, c;

    CHECK(!tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, -1); /* untouched */
    a = tracker_begin(t);
    tracker_times(t, a)->commit_us = 1000;
    CHECK(!tracker_oldest_pending_time(t, &when)); /* open, nothing produced yet */
    tracker_add_event(t, a);
    tracker_add_event(t, a);
    CHECK(tracker_commit(t, a, 10));
    b = tracker_begin(t);
    tracker_times(t, b)->commit_us = 2000;
    tracker_add_event(t, b);
    CHECK(tracker_commit(t, b, 20));
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 1000);
    CHECK(tracker_ack(t, a, true));
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 1000); /* one of a's events still out */
    CHECK(tracker_ack(t, a, true));
    /* a delivered but not popped yet: b is the oldest with events out */
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 2000);
    CHECK_EQ_U64(tracker_safe_lsn(t), 10);
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 2000);
    /* out-of-order delivery: c done before b, b still the oldest */
    c = tracker_begin(t);
    tracker_times(t, c)->commit_us = 3000;
    tracker_add_event(t, c);
    CHECK(tracker_commit(t, c, 30));
    CHECK(tracker_ack(t, c, true));
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 2000);
    CHECK(tracker_ack(t, b, true));
    CHECK(!tracker_oldest_pending_time(t, &when));
    CHECK_EQ_U64(tracker_safe_lsn(t), 30);
    /* unknown seq: nothing to fill */
    CHECK(tracker_times(t, 12345) == NULL);
    /* a reset forgets what was in flight */
    a = tracker_begin(t);
    tracker_times(t, a)->commit_us = 4000;
    tracker_add_event(t, a);
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 4000);
    tracker_reset(t);
    CHECK(!tracker_oldest_pending_time(t, &when));
    tracker_free(t);
}

/* The ring wraps and grows with commit times intact. */
static void test_oldest_pending_time_across_growth(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t seqs[200];
    int64_t when = 0;

    for (int i = 0; i < 50; i++) { /* move head away from slot 0 */
        uint64_t s = tracker_begin(t);
        CHECK(tracker_commit(t, s, (uint64_t)i + 1));
    }
    CHECK_EQ_U64(tracker_safe_lsn(t), 50);
    for (int i = 0; i < 200; i++) {
        seqs[i] = tracker_begin(t);
        tracker_times(t, seqs[i])->commit_us = 100 + i;
        tracker_add_event(t, seqs[i]);
        CHECK(tracker_commit(t, seqs[i], 100 + (uint64_t)i));
    }
    for (int i = 0; i < 150; i++)
        CHECK(tracker_ack(t, seqs[i], true));
    CHECK(tracker_oldest_pending_time(t, &when));
    CHECK_EQ_INT(when, 250);
    tracker_free(t);
}

static void test_delivered_once_committed_and_reported(void)
{
    struct tracker *t = tracker_new(0);
    uint64_t a = tracker_begin(t), b, c;

    tracker_times(t, a)->received_us = 7;
    tracker_add_event(t, a);
    tracker_add_event(t, a);
    CHECK(!tracker_txn_delivered(t, a)); /* open */
    CHECK(tracker_commit(t, a, 10));
    CHECK(tracker_ack(t, a, true));
    CHECK(!tracker_txn_delivered(t, a)); /* one report still out */
    CHECK(tracker_ack(t, a, true));
    CHECK(tracker_txn_delivered(t, a));
    CHECK_EQ_INT(tracker_times(t, a)->received_us, 7);

    /* every report in before the Commit: delivered at the commit */
    b = tracker_begin(t);
    tracker_add_event(t, b);
    CHECK(tracker_ack(t, b, true));
    CHECK(!tracker_txn_delivered(t, b));
    CHECK(tracker_commit(t, b, 20));
    CHECK(tracker_txn_delivered(t, b));

    /* a transaction with nothing for Kafka is never "delivered" */
    c = tracker_begin(t);
    CHECK(tracker_commit(t, c, 30));
    CHECK(!tracker_txn_delivered(t, c));
    CHECK_EQ_U64(tracker_safe_lsn(t), 30);
    CHECK(!tracker_txn_delivered(t, a)); /* popped */
    CHECK(tracker_times(t, a) == NULL);
    tracker_free(t);
}

int main(void)
{
    RUN(test_in_order_acks);
    RUN(test_out_of_order_acks_wait_for_the_oldest);
    RUN(test_open_transaction_holds_back);
    RUN(test_empty_transaction_is_done_at_commit);
    RUN(test_keepalive_only_when_idle);
    RUN(test_failure_freezes_until_reset);
    RUN(test_commit_must_move_forward);
    RUN(test_abandoned_transaction_never_confirms);
    RUN(test_many_transactions_grow_the_ring);
    RUN(test_oldest_pending_time);
    RUN(test_oldest_pending_time_across_growth);
    RUN(test_delivered_once_committed_and_reported);
    return check_summary();
}
