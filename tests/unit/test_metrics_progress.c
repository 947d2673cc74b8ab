/* Catch-up progress: when the relay reports, what it computes, and that it
 * goes quiet once caught up. */
#include "cdc/catchup.h"
#include "unit/check.h"

#define MIB   (UINT64_C(1) << 20)
#define SEC   INT64_C(1000000)
#define START UINT64_C(0x10000000)

static struct catchup fresh(void)
{
    struct catchup c;

    catchup_init(&c, CATCHUP_INTERVAL_US, CATCHUP_ENTER_BYTES, CATCHUP_DONE_BYTES);
    return c;
}

static void test_quiet_when_close_behind(void)
{
    struct catchup c = fresh();
    struct catchup_report rep;

    /* 10 MiB behind is normal streaming slack under load: nothing said */
    CHECK_EQ_INT(catchup_update(&c, 0, START, START + 10 * MIB, 0, &rep), CATCHUP_NONE);
    CHECK_EQ_INT(catchup_update(&c, 60 * SEC, START, START + 10 * MIB, 0, &rep), CATCHUP_NONE);
    /* the received position ahead of a stale server position: 0 behind */
    CHECK_EQ_INT(catchup_update(&c, 61 * SEC, START + 20 * MIB, START, 0, &rep), CATCHUP_NONE);
    CHECK(!c.active);
}

static void test_reports_every_interval_then_done(void)
{
    struct catchup c = fresh();
    struct catchup_report rep;
    uint64_t server = START + 100 * MIB;

    CHECK_EQ_INT(catchup_update(&c, 0, START, server, 0, &rep), CATCHUP_STARTED);
    CHECK_EQ_U64(rep.behind_bytes, 100 * MIB);
    CHECK(c.active);
    /* not before the interval */
    CHECK_EQ_INT(catchup_update(&c, 4 * SEC, START + 30 * MIB, server, 4000, &rep), CATCHUP_NONE);
    /* 5 s: 50 MiB read, 5000 events: 1000 events/s, 10 MiB/s, 50 MiB left: 5 s */
    CHECK_EQ_INT(catchup_update(&c, 5 * SEC, START + 50 * MIB, server, 5000, &rep),
                 CATCHUP_PROGRESS);
    CHECK_EQ_U64(rep.behind_bytes, 50 * MIB);
    CHECK(rep.events_per_s > 999.9 && rep.events_per_s < 1000.1);
    CHECK(rep.eta_s > 4.99 && rep.eta_s < 5.01);
    /* next interval: slower (4 MiB/s), the server moved on by 10 MiB */
    server += 10 * MIB;
    CHECK_EQ_INT(catchup_update(&c, 10 * SEC, START + 70 * MIB, server, 6000, &rep),
                 CATCHUP_PROGRESS);
    CHECK_EQ_U64(rep.behind_bytes, 40 * MIB);
    CHECK(rep.events_per_s > 199.9 && rep.events_per_s < 200.1);
    CHECK(rep.eta_s > 9.99 && rep.eta_s < 10.01);
    /* stalled: no WAL read in the interval, ETA unknown */
    CHECK_EQ_INT(catchup_update(&c, 15 * SEC, START + 70 * MIB, server, 6000, &rep),
                 CATCHUP_PROGRESS);
    CHECK(rep.eta_s < 0);
    CHECK(rep.events_per_s < 0.001);
    /* still 2 MiB behind: not done (hysteresis), and no report before 20 s */
    CHECK_EQ_INT(catchup_update(&c, 16 * SEC, server - 2 * MIB, server, 7000, &rep), CATCHUP_NONE);
    /* under 1 MiB: done, once */
    CHECK_EQ_INT(catchup_update(&c, 17 * SEC, server - 1000, server, 7500, &rep), CATCHUP_DONE);
    CHECK_EQ_U64(rep.events, 7500);
    CHECK(rep.elapsed_s > 16.99 && rep.elapsed_s < 17.01);
    CHECK(!c.active);
    /* quiet afterwards, even for a few MiB of ordinary slack */
    CHECK_EQ_INT(catchup_update(&c, 30 * SEC, server, server + 5 * MIB, 8000, &rep), CATCHUP_NONE);
    CHECK_EQ_INT(catchup_update(&c, 60 * SEC, server, server, 8000, &rep), CATCHUP_NONE);
}

static void test_falls_behind_again(void)
{
    struct catchup c = fresh();
    struct catchup_report rep;

    CHECK_EQ_INT(catchup_update(&c, 0, START, START + 20 * MIB, 0, &rep), CATCHUP_STARTED);
    CHECK_EQ_INT(catchup_update(&c, SEC, START + 20 * MIB, START + 20 * MIB, 50, &rep),
                 CATCHUP_DONE);
    CHECK_EQ_U64(rep.events, 50);
    /* a second backlog later: a second start, counted from there */
    CHECK_EQ_INT(catchup_update(&c, 100 * SEC, START, START + 40 * MIB, 80, &rep), CATCHUP_STARTED);
    CHECK_EQ_INT(catchup_update(&c, 101 * SEC, START + 40 * MIB, START + 40 * MIB, 90, &rep),
                 CATCHUP_DONE);
    CHECK_EQ_U64(rep.events, 10);
}

static void test_start_lsn_arms_a_short_replay(void)
{
    struct catchup c = fresh();
    struct catchup_report rep;

    /* 3 MiB is under the 16 MiB threshold, but --start-lsn asked for it */
    catchup_arm(&c);
    CHECK_EQ_INT(catchup_update(&c, 0, START, START + 3 * MIB, 0, &rep), CATCHUP_STARTED);
    CHECK_EQ_U64(rep.behind_bytes, 3 * MIB);
    CHECK_EQ_INT(catchup_update(&c, SEC, START + 3 * MIB, START + 3 * MIB, 9, &rep), CATCHUP_DONE);
    /* armed only once: the same gap later is ordinary slack */
    CHECK_EQ_INT(catchup_update(&c, 2 * SEC, START, START + 3 * MIB, 9, &rep), CATCHUP_NONE);

    /* armed, but nothing (or almost nothing) to replay: silent, disarmed */
    c = fresh();
    catchup_arm(&c);
    CHECK_EQ_INT(catchup_update(&c, 0, START, START + 1000, 0, &rep), CATCHUP_NONE);
    CHECK(!c.armed);
}

int main(void)
{
    RUN(test_quiet_when_close_behind);
    RUN(test_reports_every_interval_then_done);
    RUN(test_falls_behind_again);
    RUN(test_start_lsn_arms_a_short_replay);
    return check_summary();
}
