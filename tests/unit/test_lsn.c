/* LSN text round-trips and rejects what pg_lsn_in rejects. */
#include "lsn.h"
#include "unit/check.h"

static void test_parse_ok(void)
{
    uint64_t v = 0;

    CHECK(lsn_parse("0/0", &v));
    CHECK_EQ_U64(v, 0);
    CHECK(lsn_parse("16/B374D848", &v));
    CHECK_EQ_U64(v, 0x16B374D848ULL);
    CHECK(lsn_parse("ffffffff/ffffffff", &v));
    CHECK_EQ_U64(v, UINT64_MAX);
    CHECK(lsn_parse("0/1A", &v));
    CHECK_EQ_U64(v, 0x1A);
}

static void test_parse_rejects(void)
{
    uint64_t v = 42;
    const char *bad[] = {"",     "/",    "0/",          "/0",          "0",    "0/0/0", "g/0",
                         "0/0 ", " 0/0", "123456789/0", "0/123456789", "-1/0", "0x1/0", NULL};

    for (int i = 0; bad[i] != NULL; i++) {
        CHECK(!lsn_parse(bad[i], &v));
    }
    CHECK(!lsn_parse(NULL, &v));
    CHECK_EQ_U64(v, 42);
}

static void test_format(void)
{
    char buf[LSN_STR_MAX];

    CHECK_STR(lsn_format(0, buf, sizeof(buf)), "0/0");
    CHECK_STR(lsn_format(0x16B374D848ULL, buf, sizeof(buf)), "16/B374D848");
    CHECK_STR(lsn_format(UINT64_MAX, buf, sizeof(buf)), "FFFFFFFF/FFFFFFFF");
}

static void test_round_trip(void)
{
    uint64_t samples[] = {1, 0xFFFFFFFFULL, 0x100000000ULL, 0x123456789ABCDEFULL};
    char buf[LSN_STR_MAX];
    uint64_t back;

    for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
        CHECK(lsn_parse(lsn_format(samples[i], buf, sizeof(buf)), &back));
        CHECK_EQ_U64(back, samples[i]);
    }
}

int main(void)
{
    RUN(test_parse_ok);
    RUN(test_parse_rejects);
    RUN(test_format);
    RUN(test_round_trip);
    return check_summary();
}
