/* Status-update cadence (R4): due on reply request, interval, or flush moved. */
#include "cdc/feedback.h"
#include "unit/check.h"

static struct feedback_state fresh(void)
{
    struct feedback_state st = {.interval_us = 10000000, .min_gap_us = 100000};
    return st;
}

static void test_first_update_is_immediate(void)
{
    struct feedback_state st = fresh();

    CHECK(feedback_due(&st, 0, 1000));
}

static void test_interval(void)
{
    struct feedback_state st = fresh();

    feedback_sent(&st, 50, 1000000);
    CHECK(!feedback_due(&st, 50, 1000000 + 9999999));
    CHECK(feedback_due(&st, 50, 1000000 + 10000000));
    CHECK_EQ_INT(feedback_wait_us(&st, 50, 1000000 + 4000000), 6000000);
}

static void test_reply_requested_is_immediate(void)
{
    struct feedback_state st = fresh();

    feedback_sent(&st, 50, 1000000);
    st.reply_requested = true;
    CHECK(feedback_due(&st, 50, 1000001));
    feedback_sent(&st, 50, 1000002);
    CHECK(!st.reply_requested);
    CHECK(!feedback_due(&st, 50, 1000003));
}

static void test_flush_moved_waits_min_gap(void)
{
    struct feedback_state st = fresh();

    feedback_sent(&st, 50, 1000000);
    CHECK(!feedback_due(&st, 60, 1000000 + 50000));
    CHECK(feedback_due(&st, 60, 1000000 + 100000));
    CHECK_EQ_INT(feedback_wait_us(&st, 60, 1000000 + 30000), 70000);
    CHECK(!feedback_due(&st, 50, 1000000 + 100000)); /* unchanged flush: interval rules */
}

int main(void)
{
    RUN(test_first_update_is_immediate);
    RUN(test_interval);
    RUN(test_reply_requested_is_immediate);
    RUN(test_flush_moved_waits_min_gap);
    return check_summary();
}
