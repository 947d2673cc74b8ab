/*
 * What a status update reports (cdc/confirm.c, docs/protocol.md#r2, #r3,
 * #r9, #r10): every combination of the state file, the publication check and
 * the received position around one delivered position, the replay window over
 * time, the publication check's cadence and the held keepalive. apply is the
 * delivered position in every row: nothing that holds flush back holds it.
 */
#include "cdc/confirm.h"
#include "unit/check.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define S        INT64_C(1000000)

/* Big (the samples): one for the whole binary. */
static struct confirm c;

/* Delivered is 100 in every row below; each axis has the expected result
 * for its own output, so the loop also shows the axes do not interfere. */
static const struct {
    bool state_file;
    uint64_t saved;
    uint64_t save; /* expected */
} save_axis[] = {
    {false, 0, 0},   /* no state file: nothing to save */
    {false, 150, 0}, /* (a saved position without a file is never written) */
    {true, 0, 100},  /* nothing saved yet */
    {true, 99, 100}, /* behind: save first */
    {true, 100, 0},  /* already on disk */
    {true, 150, 0},  /* the file is ahead (resumed there): never written back */
};

static const struct {
    uint64_t pub_verified;
    uint64_t flush; /* expected */
} pub_axis[] = {
    {0, 0},            /* no check passed yet: nothing confirmed */
    {60, 60},          /* the last check covers 60 only */
    {100, 100},        /* exactly up to what was delivered */
    {200, 100},        /* a check never confirms more than delivered */
    {UINT64_MAX, 100}, /* message mode: no check needed */
};

static const struct {
    uint64_t received;
    uint64_t write; /* expected */
} write_axis[] = {
    {0, 100},   /* a new stream received nothing yet: write is at least flush */
    {80, 100},  /* received behind delivered (resumed from a saved position) */
    {100, 100}, /* exactly */
    {130, 130}, /* received more than Kafka has */
};

static void test_every_combination_without_window(void)
{
    for (size_t a = 0; a < NELEM(save_axis); a++)
        for (size_t b = 0; b < NELEM(pub_axis); b++)
            for (size_t d = 0; d < NELEM(write_axis); d++) {
                struct confirm_status st;

                confirm_init(&c, save_axis[a].state_file, 0);
                confirm_start(&c, save_axis[a].saved, 50, 50);
                confirm_pub_verified(&c, pub_axis[b].pub_verified);
                st = confirm_next(&c, 100, write_axis[d].received, 5 * S);
                CHECK_EQ_U64(st.save, save_axis[a].save);
                CHECK_EQ_U64(st.flush, pub_axis[b].flush);
                CHECK_EQ_U64(st.write, write_axis[d].write);
                CHECK_EQ_U64(st.apply, 100);
            }
}

static void test_saved_position_is_not_asked_again(void)
{
    struct confirm_status st;

    confirm_init(&c, true, 0);
    confirm_start(&c, 0, 0, 0);
    confirm_pub_verified(&c, UINT64_MAX);
    st = confirm_next(&c, 100, 100, S);
    CHECK_EQ_U64(st.save, 100);
    /* the save failed: the next update asks again */
    st = confirm_next(&c, 100, 100, S);
    CHECK_EQ_U64(st.save, 100);
    confirm_saved(&c, 100);
    st = confirm_next(&c, 100, 100, S);
    CHECK_EQ_U64(st.save, 0);
    confirm_saved(&c, 90); /* never lowers */
    CHECK_EQ_U64(c.saved, 100);
    st = confirm_next(&c, 120, 120, S);
    CHECK_EQ_U64(st.save, 120);
}

/*
 * --replay-window 10 s: (time in s, delivered) per update, and the flush
 * it must carry. Before any sample is old enough the slot's own position
 * (400 when the slot was there, else the start) is held; later the newest
 * sample at least 10 s old. Samples are at least 1 s apart and only when
 * the position moved.
 */
static const struct {
    int64_t at_s10; /* tenths of a second */
    uint64_t delivered;
    uint64_t flush;
} window_rows[] = {
    {0, 500, 400},     /* first sample (t=0, 500) */
    {5, 600, 400},     /* 0.5 s later: too soon for a sample */
    {20, 700, 400},    /* sample (2 s, 700) */
    {30, 700, 400},    /* unchanged: no sample */
    {99, 800, 400},    /* sample (9.9 s, 800); nothing 10 s old yet */
    {100, 800, 500},   /* (0, 500) is 10 s old */
    {119, 900, 500},   /* sample (11.9 s, 900) */
    {120, 900, 700},   /* (2 s, 700) is 10 s old */
    {250, 1000, 900},  /* sample (25 s, 1000); (11.9 s, 900) the newest old enough */
    {350, 1000, 1000}, /* (25 s, 1000) is 10 s old */
};

static void test_replay_window_over_time(void)
{
    confirm_init(&c, false, 10 * S);
    confirm_start(&c, 0, 400, 450);
    confirm_pub_verified(&c, UINT64_MAX);
    for (size_t i = 0; i < NELEM(window_rows); i++) {
        struct confirm_status st = confirm_next(
            &c, window_rows[i].delivered, window_rows[i].delivered, window_rows[i].at_s10 * S / 10);

        if (st.flush != window_rows[i].flush)
            fprintf(stderr, "row %zu (t=%lld ds):\n", i, (long long)window_rows[i].at_s10);
        CHECK_EQ_U64(st.flush, window_rows[i].flush);
        CHECK_EQ_U64(st.write, window_rows[i].delivered);
        CHECK_EQ_U64(st.apply, window_rows[i].delivered); /* the window holds flush only */
    }
}

static void test_replay_window_holds_the_start_when_the_slot_is_unknown(void)
{
    confirm_init(&c, false, 10 * S);
    confirm_start(&c, 0, 0, 450);
    confirm_pub_verified(&c, UINT64_MAX);
    CHECK_EQ_U64(confirm_next(&c, 500, 500, S).flush, 450);
}

static void test_replay_window_and_publication_check_take_the_lower(void)
{
    confirm_init(&c, true, 10 * S);
    confirm_start(&c, 0, 100, 100);
    confirm_pub_verified(&c, 300);
    CHECK_EQ_U64(confirm_next(&c, 500, 500, 0).flush, 100);      /* window holds 100 */
    CHECK_EQ_U64(confirm_next(&c, 600, 600, 11 * S).flush, 300); /* window 500, check 300 */
    CHECK_EQ_U64(confirm_next(&c, 600, 600, 11 * S).apply, 600); /* neither holds apply */
    confirm_pub_verified(&c, 1000);
    CHECK_EQ_U64(confirm_next(&c, 600, 600, 12 * S).flush, 500);
    /* the state file is written with the delivered position, not the flush */
    CHECK_EQ_U64(confirm_next(&c, 700, 700, 13 * S).save, 700);
}

/* Far more samples than kept: the oldest go, and the hold still moves to
 * the newest sample old enough. */
static void test_replay_window_drops_the_oldest_samples(void)
{
    int64_t window = (int64_t)CONFIRM_SAMPLES * 2 * S; /* samples 2 s apart */
    int64_t t = 0;
    uint64_t lsn = 1000;

    confirm_init(&c, false, window);
    confirm_start(&c, 0, 1, 1);
    confirm_pub_verified(&c, UINT64_MAX);
    for (size_t i = 0; i < CONFIRM_SAMPLES + 10; i++, t += 2 * S, lsn += 10)
        CHECK_EQ_U64(confirm_next(&c, lsn, lsn, t).flush, 1);
    CHECK_EQ_INT(c.nsamples, CONFIRM_SAMPLES);
    /* the first 10 samples were dropped: the oldest kept is (20 s, 1100);
     * an unchanged position takes no sample that would drop it */
    lsn -= 10;
    CHECK_EQ_U64(confirm_next(&c, lsn, lsn, 20 * S + window).flush, 1100);
}

/* (delivered, seconds since the last check started) -> due, with the last
 * check covering 100 and an interval of 10 s. */
static const struct {
    uint64_t delivered;
    int64_t since_s;
    bool due;
} check_rows[] = {
    {100, 60, false}, /* nothing new to confirm */
    {90, 60, false},  /* behind what is covered */
    {101, 9, false},  /* new, but the interval has not passed */
    {101, 10, true},  /* new and the interval passed */
    {500, 60, true},
};

static void test_publication_check_cadence(void)
{
    for (size_t i = 0; i < NELEM(check_rows); i++) {
        confirm_init(&c, false, 0);
        confirm_pub_verified(&c, 100);
        (void)confirm_pub_check_started(&c, 50, 50, 1000 * S);
        CHECK(confirm_pub_check_due(&c, check_rows[i].delivered, (1000 + check_rows[i].since_s) * S,
                                    10 * S) == check_rows[i].due);
    }
}

/* A check covers what was received before it started, at least what was
 * delivered; a late answer never lowers what a newer one covered. */
static void test_publication_check_covers_what_was_received_when_it_started(void)
{
    uint64_t covered;

    confirm_init(&c, false, 0);
    covered = confirm_pub_check_started(&c, 100, 250, 20 * S);
    CHECK_EQ_U64(covered, 250);
    CHECK_EQ_U64(confirm_pub_check_started(&c, 300, 250, 40 * S), 300);
    CHECK_EQ_U64(confirm_next(&c, 300, 400, 41 * S).flush, 0);   /* nothing verified yet */
    CHECK_EQ_U64(confirm_next(&c, 300, 400, 41 * S).apply, 300); /* delivered, unverified */
    confirm_pub_verified(&c, covered);
    CHECK_EQ_U64(confirm_next(&c, 300, 400, 42 * S).flush, 250);
    confirm_pub_verified(&c, 1000); /* a reconnect validated up to the server's end */
    confirm_pub_verified(&c, covered);
    CHECK_EQ_U64(c.pub_verified, 1000);
    CHECK(!confirm_pub_check_due(&c, 900, 100 * S, 10 * S));
}

static void test_held_keepalive(void)
{
    confirm_init(&c, false, 0);
    CHECK_EQ_U64(c.held_keepalive, 0);
    confirm_hold_keepalive(&c, 700);
    CHECK_EQ_U64(c.held_keepalive, 700);
    confirm_hold_keepalive(&c, 800); /* a newer keepalive replaces it */
    CHECK_EQ_U64(c.held_keepalive, 800);
    confirm_drop_keepalive(&c);
    CHECK_EQ_U64(c.held_keepalive, 0);
    /* the held position is never reported by itself: only the tracker,
     * once idle, turns it into a delivered position */
    confirm_hold_keepalive(&c, 900);
    confirm_pub_verified(&c, UINT64_MAX);
    CHECK_EQ_U64(confirm_next(&c, 100, 100, S).flush, 100);
}

int main(void)
{
    RUN(test_every_combination_without_window);
    RUN(test_saved_position_is_not_asked_again);
    RUN(test_replay_window_over_time);
    RUN(test_replay_window_holds_the_start_when_the_slot_is_unknown);
    RUN(test_replay_window_and_publication_check_take_the_lower);
    RUN(test_replay_window_drops_the_oldest_samples);
    RUN(test_publication_check_cadence);
    RUN(test_publication_check_covers_what_was_received_when_it_started);
    RUN(test_held_keepalive);
    return check_summary();
}
