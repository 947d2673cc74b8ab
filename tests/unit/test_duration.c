/*
 * common/duration.c: every unit, fractions, a bare number in each of the two
 * legacy units, mixed parts, and everything that is not a duration.
 */
#include "unit/check.h"

#include "duration.h"

static void expect_ms(const char *s, enum duration_unit bare, int64_t want, int line)
{
    int64_t got = -1;

    if (duration_parse_ms(s, bare, &got) && got == want) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: \"%s\" -> %lld, want %lld\n", __FILE__, line, s,
                (long long)got, (long long)want);
    }
}
#define EXPECT_MS(s, bare, want) expect_ms((s), (bare), (want), __LINE__)

static void expect_bad(const char *s, int line)
{
    int64_t got = -1;

    if (!duration_parse_ms(s, DURATION_BARE_S, &got) &&
        !duration_parse_ms(s, DURATION_BARE_MS, &got)) {
        check_passed++;
    } else {
        check_failed++;
        fprintf(stderr, "FAIL %s:%d: \"%s\" parsed as %lld\n", __FILE__, line, s, (long long)got);
    }
}
#define EXPECT_BAD(s) expect_bad((s), __LINE__)

static void test_units(void)
{
    EXPECT_MS("500ms", DURATION_BARE_S, 500);
    EXPECT_MS("10s", DURATION_BARE_S, 10000);
    EXPECT_MS("15m", DURATION_BARE_S, 900000);
    EXPECT_MS("2h", DURATION_BARE_S, 7200000);
    EXPECT_MS("1d", DURATION_BARE_S, 86400000);
    EXPECT_MS("0s", DURATION_BARE_S, 0);
    EXPECT_MS("0ms", DURATION_BARE_MS, 0);
    /* A unit given wins over the bare unit. */
    EXPECT_MS("10s", DURATION_BARE_MS, 10000);
    EXPECT_MS("500ms", DURATION_BARE_MS, 500);
}

static void test_bare_numbers_keep_the_old_unit(void)
{
    EXPECT_MS("10", DURATION_BARE_S, 10000);   /* --status-interval 10 */
    EXPECT_MS("100", DURATION_BARE_MS, 100);   /* --txn-max-ms 100 */
    EXPECT_MS("5000", DURATION_BARE_MS, 5000); /* DB_TIMEOUT_MS=5000 */
    EXPECT_MS("900", DURATION_BARE_S, 900000); /* --replay-window 900 */
    EXPECT_MS("0", DURATION_BARE_S, 0);
    EXPECT_MS("2.5", DURATION_BARE_S, 2500); /* --heartbeat-interval 2.5, as before */
    EXPECT_MS("007", DURATION_BARE_S, 7000);
}

static void test_fractions_and_parts(void)
{
    EXPECT_MS("0.1s", DURATION_BARE_S, 100); /* exact: no floating point */
    EXPECT_MS("2.3s", DURATION_BARE_S, 2300);
    EXPECT_MS("1.5h", DURATION_BARE_S, 5400000);
    EXPECT_MS("0.5m", DURATION_BARE_S, 30000);
    EXPECT_MS("1.5ms", DURATION_BARE_S, 1);   /* sub-millisecond dropped */
    EXPECT_MS("0.0001s", DURATION_BARE_S, 0); /* 0.1 ms */
    EXPECT_MS("0.123456789123d", DURATION_BARE_S,
              10666666); /* long fractions are cut, not overflowed */
    EXPECT_MS("1h30m", DURATION_BARE_S, 5400000);
    EXPECT_MS("1m30s", DURATION_BARE_S, 90000);
    EXPECT_MS("1d2h3m4s5ms", DURATION_BARE_S, 93784005);
    EXPECT_MS("30s1h", DURATION_BARE_S, 3630000); /* any order, as Go's time.ParseDuration */
    EXPECT_MS("3650d", DURATION_BARE_S, DURATION_MAX_MS);
    EXPECT_MS("87600h", DURATION_BARE_S, DURATION_MAX_MS);
}

static void test_not_durations(void)
{
    EXPECT_BAD("");
    EXPECT_BAD("s");
    EXPECT_BAD("ms");
    EXPECT_BAD("soon");
    EXPECT_BAD("10x");
    EXPECT_BAD("10 s"); /* no spaces */
    EXPECT_BAD(" 10s");
    EXPECT_BAD("10s ");
    EXPECT_BAD("-1s"); /* no sign */
    EXPECT_BAD("+1s");
    EXPECT_BAD("1.s");
    EXPECT_BAD(".5s");
    EXPECT_BAD("1..5s");
    EXPECT_BAD("10min"); /* m followed by letters */
    EXPECT_BAD("10sec");
    EXPECT_BAD("10S");  /* units are lower case */
    EXPECT_BAD("1h30"); /* a number without a unit after a part */
    EXPECT_BAD("1e3s");
    EXPECT_BAD("0x10s");
    EXPECT_BAD("3650d1ms"); /* past DURATION_MAX_MS */
    EXPECT_BAD("3651d");
    EXPECT_BAD("99999999999999999999s");
    EXPECT_BAD("9223372036854775807ms");
    EXPECT_BAD("315360000001"); /* bare ms past the maximum... */
    {
        int64_t ms = 0;

        CHECK(!duration_parse_ms(NULL, DURATION_BARE_S, &ms));
        CHECK(!duration_parse_ms("315360001", DURATION_BARE_S, &ms)); /* ...and bare seconds */
        CHECK(duration_parse_ms("315360000", DURATION_BARE_S, &ms) && ms == DURATION_MAX_MS);
    }
}

static void test_format(void)
{
    char buf[DURATION_STR_MAX];

    CHECK_STR(duration_format_ms(0, buf, sizeof(buf)), "0");
    CHECK_STR(duration_format_ms(1, buf, sizeof(buf)), "1ms");
    CHECK_STR(duration_format_ms(500, buf, sizeof(buf)), "500ms");
    CHECK_STR(duration_format_ms(1500, buf, sizeof(buf)), "1500ms");
    CHECK_STR(duration_format_ms(10000, buf, sizeof(buf)), "10s");
    CHECK_STR(duration_format_ms(90000, buf, sizeof(buf)), "90s");
    CHECK_STR(duration_format_ms(900000, buf, sizeof(buf)), "15m");
    CHECK_STR(duration_format_ms(7200000, buf, sizeof(buf)), "2h");
    CHECK_STR(duration_format_ms(86400000, buf, sizeof(buf)), "1d");
    CHECK_STR(duration_format_ms(DURATION_MAX_MS, buf, sizeof(buf)), "3650d");
    /* What it writes parses back to the same value. */
    for (int64_t ms = 1; ms < DURATION_MAX_MS; ms = ms * 7 + 3) {
        int64_t back = -1;

        duration_format_ms(ms, buf, sizeof(buf));
        CHECK(duration_parse_ms(buf, DURATION_BARE_S, &back) && back == ms);
    }
}

int main(void)
{
    RUN(test_units);
    RUN(test_bare_numbers_keep_the_old_unit);
    RUN(test_fractions_and_parts);
    RUN(test_not_durations);
    RUN(test_format);
    return check_summary();
}
