/* W3C traceparent: the request header's checks and the generated form. */
#include "api/traceparent.h"
#include "unit/check.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static bool parse(const char *s, char out[TRACEPARENT_LEN + 1])
{
    return traceparent_parse(s, strlen(s), out);
}

static void test_valid(void)
{
    char out[TRACEPARENT_LEN + 1];

    CHECK(parse(TP, out));
    CHECK_STR(out, TP);
    CHECK(parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", out));
    CHECK(parse("00-00000000000000000000000000000001-0000000000000001-ff", out));
    /* A later version: read as version 00, extra fields dropped. */
    CHECK(parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", out));
    CHECK_STR(out, TP);
    CHECK(parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-what-ever", out));
    CHECK_STR(out, TP);
    /* Not NUL-terminated input: only len bytes are read. */
    CHECK(traceparent_parse(TP "xyz", TRACEPARENT_LEN, out));
}

static void test_invalid(void)
{
    char out[TRACEPARENT_LEN + 1] = "untouched";
    const char *bad[] = {
        "",
        "00",
        TP "-", /* version 00 is 55 bytes */
        TP " ",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0A",
        "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* version ff */
        "0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace-id */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent-id */
        "00-4bf92f3577b34da6a3ce929d0e0e473-600f067aa0ba902b7-01", /* dash misplaced */
        "00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736_00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7_01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x", /* no '-' after flags */
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7--1",
        "00-4bf92f3577b34da6a3ce929d0e0e47 6-00f067aa0ba902b7-01",
        NULL,
    };

    for (int i = 0; bad[i] != NULL; i++) {
        if (parse(bad[i], out))
            CHECK_FAIL_AT(__FILE__, __LINE__, "accepted \"%s\"", bad[i]);
        else
            check_passed++;
    }
    CHECK_STR(out, "untouched");
}

static void test_format(void)
{
    uint8_t r[24];
    char out[TRACEPARENT_LEN + 1], back[TRACEPARENT_LEN + 1];

    for (int i = 0; i < 24; i++)
        r[i] = (uint8_t)(0xa0 + i);
    traceparent_format(r, out);
    CHECK_STR(out, "00-a0a1a2a3a4a5a6a7a8a9aaabacadaeaf-b0b1b2b3b4b5b6b7-00");
    CHECK(parse(out, back));
    /* All-zero ids are invalid, so they are never made. */
    memset(r, 0, sizeof(r));
    traceparent_format(r, out);
    CHECK_STR(out, "00-00000000000000000000000000000001-0000000000000001-00");
    CHECK(parse(out, back));
}

static void test_new(void)
{
    char a[TRACEPARENT_LEN + 1], b[TRACEPARENT_LEN + 1], back[TRACEPARENT_LEN + 1];

    CHECK(traceparent_new(a));
    CHECK(traceparent_new(b));
    CHECK(parse(a, back));
    CHECK(parse(b, back));
    CHECK(strcmp(a, b) != 0); /* 192 random bits: equal only if the source is broken */
}

int main(void)
{
    RUN(test_valid);
    RUN(test_invalid);
    RUN(test_format);
    RUN(test_new);
    return check_summary();
}
