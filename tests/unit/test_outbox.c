/* Outbox routing: column mapping, topic template, timestamps. */
#include "cdc/outbox.h"
#include "unit/check.h"

static struct pgout_str view(const char *s)
{
    struct pgout_str v = {s, strlen(s)};
    return v;
}

static struct outbox_event sample(const char *aggregate_type)
{
    struct outbox_event ev = {
        .id = view("0b7e6c4e-0000-4000-8000-000000000001"),
        .aggregate_type = view(aggregate_type),
        .aggregate_id = view("42"),
        .event_type = view("OrderCreated"),
        .payload = view("{}"),
    };
    return ev;
}

static void test_topic_template(void)
{
    char buf[256];
    struct outbox_event ev = sample("orders");

    CHECK(outbox_topic("${aggregate_type}.events", &ev, buf, sizeof(buf)));
    CHECK_STR(buf, "orders.events");
    CHECK(outbox_topic("outbox.event.${aggregate_type}", &ev, buf, sizeof(buf)));
    CHECK_STR(buf, "outbox.event.orders");
    CHECK(outbox_topic("${aggregate_type}-${event_type}", &ev, buf, sizeof(buf)));
    CHECK_STR(buf, "orders-OrderCreated");
    CHECK(outbox_topic("fixed", &ev, buf, sizeof(buf)));
    CHECK_STR(buf, "fixed");
    CHECK(outbox_topic("${unknown}", &ev, buf, sizeof(buf)) == false); /* '$' is illegal */
}

static void test_topic_rejects_invalid(void)
{
    char buf[256];
    struct outbox_event ev = sample("bad type/with slash");
    char longname[300];

    CHECK(!outbox_topic("${aggregate_type}.events", &ev, buf, sizeof(buf)));
    ev = sample("");
    CHECK(!outbox_topic("${aggregate_type}", &ev, buf, sizeof(buf)));
    ev = sample("..");
    CHECK(!outbox_topic("${aggregate_type}", &ev, buf, sizeof(buf)));
    memset(longname, 'a', 250);
    longname[250] = '\0';
    ev = sample(longname);
    CHECK(!outbox_topic("${aggregate_type}", &ev, buf, sizeof(buf)));
    longname[249] = '\0';
    ev = sample(longname);
    CHECK(outbox_topic("${aggregate_type}", &ev, buf, sizeof(buf)));
    ev = sample("orders");
    CHECK(!outbox_topic("${aggregate_type}.events", &ev, buf, 8)); /* does not fit */
    CHECK(outbox_topic_valid("a-b_c.D9", 8));
    CHECK(!outbox_topic_valid("ä", strlen("ä")));
}

static void test_timestamp(void)
{
    char buf[OUTBOX_TS_LEN + 1];

    CHECK_EQ_INT(outbox_format_timestamp(0, buf, sizeof(buf)), OUTBOX_TS_LEN);
    CHECK_STR(buf, "2000-01-01T00:00:00.000000Z");
    outbox_format_timestamp(INT64_C(848102400123456), buf, sizeof(buf));
    CHECK_STR(buf, "2026-11-16T00:00:00.123456Z");
    outbox_format_timestamp(-1, buf, sizeof(buf));
    CHECK_STR(buf, "1999-12-31T23:59:59.999999Z");
    CHECK_EQ_INT(outbox_format_timestamp(0, buf, 10), 0);
}

static void test_event_from_tuple(void)
{
    const char *names[] = {"created_at",   "payload",        "event_type",
                           "aggregate_id", "aggregate_type", "id"};
    char *colnames[6];
    uint32_t typoids[6] = {0};
    struct relcache_rel rel = {.relid = 7, .nspname = "public", .relname = "outbox", .ncols = 6};
    struct outbox_layout layout;
    const char *missing = NULL;
    struct pgout_col cols[6] = {
        {PGOUT_COL_TEXT, (const uint8_t *)"2026", 4},
        {PGOUT_COL_TEXT, (const uint8_t *)"{\"a\": 1}", 8},
        {PGOUT_COL_TEXT, (const uint8_t *)"OrderCreated", 12},
        {PGOUT_COL_TEXT, (const uint8_t *)"agg", 3},
        {PGOUT_COL_TEXT, (const uint8_t *)"orders", 6},
        {PGOUT_COL_TEXT, (const uint8_t *)"id-1", 4},
    };
    struct pgout_tuple tup = {6, cols};
    struct outbox_event ev;

    for (int i = 0; i < 6; i++)
        colnames[i] = (char *)names[i];
    rel.colnames = colnames;
    rel.typoids = typoids;
    CHECK_EQ_INT(outbox_layout_init(&layout, &rel, &missing), OUTBOX_OK);
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_OK);
    CHECK_VIEW(ev.id.ptr, ev.id.len, "id-1");
    CHECK_VIEW(ev.aggregate_type.ptr, ev.aggregate_type.len, "orders");
    CHECK_VIEW(ev.aggregate_id.ptr, ev.aggregate_id.len, "agg");
    CHECK_VIEW(ev.event_type.ptr, ev.event_type.len, "OrderCreated");
    CHECK_VIEW(ev.payload.ptr, ev.payload.len, "{\"a\": 1}");

    cols[1].kind = PGOUT_COL_NULL;
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_OK);
    CHECK(ev.payload.ptr == NULL);
    cols[3].kind = PGOUT_COL_NULL;
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_ENULL);
    /* a bad row is still described by what it has (for the dead-letter copy) */
    CHECK(ev.aggregate_id.ptr == NULL);
    CHECK_VIEW(ev.id.ptr, ev.id.len, "id-1");
    CHECK_VIEW(ev.aggregate_type.ptr, ev.aggregate_type.len, "orders");
    CHECK_VIEW(ev.event_type.ptr, ev.event_type.len, "OrderCreated");
    cols[3].kind = PGOUT_COL_BINARY;
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_EBINARY);
    cols[3].kind = PGOUT_COL_TEXT;
    tup.ncols = 3;
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_ESHORT);

    rel.ncols = 5; /* drop "id" */
    CHECK_EQ_INT(outbox_layout_init(&layout, &rel, &missing), OUTBOX_EMISSING_COLUMN);
    CHECK_STR(missing, "id");
}

int main(void)
{
    RUN(test_topic_template);
    RUN(test_topic_rejects_invalid);
    RUN(test_timestamp);
    RUN(test_event_from_tuple);
    return check_summary();
}
