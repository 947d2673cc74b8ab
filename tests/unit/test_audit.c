/* cdc-relay audit without servers: the time forms, the commit_ts header, and
 * the comparison of rows with messages. */
#include "cdc/audit.h"
#include "unit/check.h"

#define T0 INT64_C(1796430000000000) /* 2026-12-05T00:20:00Z in Unix µs */

static void test_parse_time(void)
{
    int64_t us = 0;

    CHECK(audit_parse_time("2026-12-05T00:20:00Z", 0, &us));
    CHECK_EQ_INT(us, T0);
    CHECK(audit_parse_time("2026-12-05 00:20:00", 0, &us)); /* no zone: UTC */
    CHECK_EQ_INT(us, T0);
    CHECK(audit_parse_time("2026-12-05T02:20:00.5+02:00", 0, &us));
    CHECK_EQ_INT(us, T0 + 500000);
    CHECK(audit_parse_time("2026-12-04T23:20:00.000001-01:00", 0, &us));
    CHECK_EQ_INT(us, T0 + 1);
    CHECK(audit_parse_time("2026-12-05T00:20", 0, &us));
    CHECK_EQ_INT(us, T0);
    CHECK(audit_parse_time("2026-12-05", 0, &us));
    CHECK_EQ_INT(us, T0 - INT64_C(1200) * 1000000);
    CHECK(audit_parse_time("now", T0, &us));
    CHECK_EQ_INT(us, T0);
    CHECK(audit_parse_time("2h", T0, &us));
    CHECK_EQ_INT(us, T0 - INT64_C(7200) * 1000000);
    CHECK(audit_parse_time("90", T0, &us)); /* a bare number: seconds */
    CHECK_EQ_INT(us, T0 - INT64_C(90) * 1000000);
    CHECK(!audit_parse_time("2026-02-30", 0, &us));
    CHECK(!audit_parse_time("2026-13-01", 0, &us));
    CHECK(!audit_parse_time("2026-12-05T24:00:00Z", 0, &us));
    CHECK(!audit_parse_time("2026-12-05T00:20:00.1234567Z", 0, &us));
    CHECK(!audit_parse_time("2026-12-05T00:20:00.Z", 0, &us));
    CHECK(!audit_parse_time("2026-12-05T00:20:00Zx", 0, &us));
    CHECK(!audit_parse_time("2026-12-05T00:20:00+2", 0, &us));
    CHECK(!audit_parse_time("yesterday", 0, &us));
    CHECK(!audit_parse_time("", 0, &us));
}

static void test_commit_ts(void)
{
    int64_t us = 0;
    const char *ts = "2026-12-05T00:20:00.000042Z";

    CHECK(audit_parse_commit_ts(ts, strlen(ts), &us));
    CHECK_EQ_INT(us, T0 + 42);
    CHECK(!audit_parse_commit_ts("2026-12-05T00:20:00Z", 20, &us));
    CHECK(!audit_parse_commit_ts(ts, strlen(ts) - 1, &us));
}

struct seen {
    int n[5];
    char last[5][64];
};

static void on_finding(void *arg, enum audit_finding f, const char *id, size_t len,
                       const char *topic, int32_t partition, int64_t offset)
{
    struct seen *s = arg;

    (void)topic;
    (void)partition;
    (void)offset;
    s->n[f]++;
    snprintf(s->last[f], sizeof(s->last[f]), "%.*s", (int)len, id);
}

static void add_row(struct audit_book *b, const char *id, size_t topic)
{
    audit_book_add_row(b, id, strlen(id), topic);
}

static void add_msg(struct audit_book *b, const char *id, size_t topic, int64_t commit_us, bool dl)
{
    audit_book_add_msg(b, id, id != NULL ? strlen(id) : 0, topic, commit_us, 0, 7, dl);
}

static void test_compare(void)
{
    struct audit_book *b = audit_book_new();
    struct audit_counts c;
    struct seen s;
    size_t orders = audit_book_topic(b, "orders.events", 13);
    size_t other = audit_book_topic(b, "other.events", 12);

    CHECK_EQ_INT(audit_book_topic(b, "orders.events", 13), orders); /* interned */
    add_row(b, "a", orders);                                        /* found twice: one duplicate */
    add_row(b, "b", orders);                                        /* missing */
    add_row(b, "c", orders); /* only on another topic: missing, and that one wrong */
    add_row(b, "d", orders); /* dead-lettered */
    add_row(b, "e", orders); /* found */
    add_msg(b, "a", orders, T0, false);
    add_msg(b, "a", orders, T0, false);
    add_msg(b, "c", other, T0, false);
    add_msg(b, "d", other, T0, true);
    add_msg(b, "e", orders, T0 - 10, false);    /* committed before the range: still its row's */
    add_msg(b, "x", orders, T0 + 5, false);     /* no row, in the range */
    add_msg(b, "y", orders, T0 - 1, false);     /* no row, before the range: another range's */
    add_msg(b, "z", orders, INT64_MIN, false);  /* no commit_ts: counted in */
    add_msg(b, NULL, orders, T0 + 1, false);    /* no id, in the range */
    add_msg(b, NULL, orders, T0 + 1000, false); /* no id, after it */
    memset(&s, 0, sizeof(s));
    audit_book_compare(b, T0, T0 + 100, false, on_finding, &s, &c);
    CHECK_EQ_INT(c.rows, 5);
    CHECK_EQ_INT(c.found, 2);
    CHECK_EQ_INT(c.duplicates, 1);
    CHECK_EQ_INT(c.missing, 2);
    CHECK_EQ_INT(s.n[AUDIT_MISSING], 2);
    CHECK_EQ_INT(c.dead_lettered, 1);
    CHECK_STR(s.last[AUDIT_DEAD_LETTERED], "d");
    CHECK_EQ_INT(c.wrong_topic, 1);
    CHECK_STR(s.last[AUDIT_WRONG_TOPIC], "c");
    CHECK_EQ_INT(c.no_row, 2); /* x and z */
    CHECK_EQ_INT(s.n[AUDIT_NO_ROW], 2);
    CHECK_EQ_INT(c.no_id, 1);
    CHECK_EQ_INT(c.outside, 2);  /* y, and the late message without an id */
    CHECK_EQ_INT(c.messages, 9); /* the dead-letter copy is not one of the topics' */
    audit_book_free(b);

    /* any_topic (--topics): a message on any topic read finds its row. */
    b = audit_book_new();
    other = audit_book_topic(b, "t1", 2);
    add_row(b, "c", audit_book_topic(b, "", 0));
    add_msg(b, "c", other, T0, false);
    memset(&s, 0, sizeof(s));
    audit_book_compare(b, T0, T0 + 100, true, on_finding, &s, &c);
    CHECK_EQ_INT(c.found, 1);
    CHECK_EQ_INT(c.missing + c.wrong_topic + c.no_row, 0);
    audit_book_free(b);
    audit_book_free(NULL);
}

static void test_compare_many(void)
{
    struct audit_book *b = audit_book_new();
    struct audit_counts c;
    struct seen s;
    size_t t = audit_book_topic(b, "t", 1);
    char id[32];

    /* rows and messages added in different orders; every 1000th missing */
    for (int i = 0; i < 20000; i++) {
        snprintf(id, sizeof(id), "id-%d", i);
        add_row(b, id, t);
    }
    for (int i = 19999; i >= 0; i--) {
        if (i % 1000 == 0)
            continue;
        snprintf(id, sizeof(id), "id-%d", i);
        add_msg(b, id, t, T0, false);
    }
    memset(&s, 0, sizeof(s));
    audit_book_compare(b, T0, T0 + 1, false, on_finding, &s, &c);
    CHECK_EQ_INT(c.found, 19980);
    CHECK_EQ_INT(c.missing, 20);
    CHECK_EQ_INT(c.no_row, 0);
    audit_book_free(b);
}

int main(void)
{
    RUN(test_parse_time);
    RUN(test_commit_ts);
    RUN(test_compare);
    RUN(test_compare_many);
    return check_summary();
}
