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
    struct outbox_columns oc;

    outbox_columns_default(&oc);
    for (int i = 0; i < 6; i++)
        colnames[i] = (char *)names[i];
    rel.colnames = colnames;
    rel.typoids = typoids;
    CHECK_EQ_INT(outbox_layout_init(&layout, &oc, &rel, &missing), OUTBOX_OK);
    CHECK_EQ_INT(layout.traceparent, -1); /* optional, and absent here */
    CHECK_EQ_INT(layout.timestamp, 0);
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
    CHECK_EQ_INT(outbox_layout_init(&layout, &oc, &rel, &missing), OUTBOX_EMISSING_COLUMN);
    CHECK_STR(missing, "id");
    /* A traceparent column named explicitly must be there. */
    rel.ncols = 6;
    oc.traceparent_required = true;
    CHECK_EQ_INT(outbox_layout_init(&layout, &oc, &rel, &missing), OUTBOX_EMISSING_COLUMN);
    CHECK_STR(missing, "traceparent");
}

/* Debezium's default table: other names, a bytea payload, a bigint
 * timestamp, a tracing column and extra header columns. */
static void test_mapped_columns(void)
{
    static const char *const names[] = {
        "id",        "aggregatetype", "aggregateid",        "type", "payload",
        "timestamp", "tenant",        "tracingspancontext", "blob"};
    uint32_t typoids[9] = {
        2950, 1043, 1043, 1043, OUTBOX_BYTEA_OID, OUTBOX_INT8_OID, 25, 25, OUTBOX_BYTEA_OID};
    char *colnames[9], spec[] = " tenant = x-tenant ,blob";
    struct relcache_rel rel = {
        .relid = 9, .nspname = "public", .relname = "outboxevent", .ncols = 9};
    struct pgout_col cols[9] = {
        {PGOUT_COL_TEXT, (const uint8_t *)"e1", 2},
        {PGOUT_COL_TEXT, (const uint8_t *)"Order", 5},
        {PGOUT_COL_TEXT, (const uint8_t *)"42", 2},
        {PGOUT_COL_TEXT, (const uint8_t *)"OrderCreated", 12},
        {PGOUT_COL_TEXT, (const uint8_t *)"\\x00ff0a41", 10},
        {PGOUT_COL_TEXT, (const uint8_t *)"1556890294344", 13},
        {PGOUT_COL_NULL, NULL, 0},
        {PGOUT_COL_TEXT, (const uint8_t *)"#Thu Jan 01\ntraceparent=00-ab-cd-01\n", 36},
        {PGOUT_COL_TEXT, (const uint8_t *)"a\\\\b\\001", 8},
    };
    struct pgout_tuple tup = {9, cols};
    struct outbox_columns oc;
    struct outbox_layout layout;
    struct outbox_event ev;
    const char *missing = NULL, *why = NULL;
    uint8_t buf[64];

    outbox_columns_default(&oc);
    oc.role[OUTBOX_COL_AGGREGATE_TYPE] = "aggregatetype";
    oc.role[OUTBOX_COL_AGGREGATE_ID] = "aggregateid";
    oc.role[OUTBOX_COL_EVENT_TYPE] = "type";
    oc.timestamp = "timestamp";
    oc.traceparent = "tracingspancontext";
    CHECK(outbox_header_columns_parse(spec, &oc, &why));
    CHECK_EQ_INT(oc.nheaders, 2);
    CHECK_STR(oc.headers[0].column, "tenant");
    CHECK_STR(oc.headers[0].header, "x-tenant");
    CHECK_STR(oc.headers[1].column, "blob");
    CHECK_STR(oc.headers[1].header, "blob");
    for (int i = 0; i < 9; i++)
        colnames[i] = (char *)names[i];
    rel.colnames = colnames;
    rel.typoids = typoids;
    CHECK_EQ_INT(outbox_layout_init(&layout, &oc, &rel, &missing), OUTBOX_OK);
    CHECK(layout.bytea[OUTBOX_COL_PAYLOAD]);
    CHECK(!layout.bytea[OUTBOX_COL_ID]);
    CHECK_EQ_INT(layout.timestamp_kind, OUTBOX_TS_EPOCH_MS);
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_OK);
    CHECK_VIEW(ev.aggregate_type.ptr, ev.aggregate_type.len, "Order");
    CHECK_EQ_INT(ev.nheaders, 2);
    CHECK(ev.headers[0].value.ptr == NULL); /* NULL column: a null header */
    CHECK_STR(ev.headers[0].name, "x-tenant");
    CHECK_EQ_INT(outbox_event_decode_size(&layout, &ev), 10 + 8);
    CHECK_EQ_INT(outbox_event_decode(&layout, &ev, buf, 4), OUTBOX_EBYTEA); /* too small */
    CHECK_EQ_INT(outbox_event_from_tuple(&layout, &tup, &ev), OUTBOX_OK);
    CHECK_EQ_INT(outbox_event_decode(&layout, &ev, buf, sizeof(buf)), OUTBOX_OK);
    CHECK_EQ_INT(ev.payload.len, 4);
    CHECK(memcmp(ev.payload.ptr, "\x00\xff\x0a\x41", 4) == 0);
    CHECK_EQ_INT(ev.headers[1].value.len, 4);
    CHECK(memcmp(ev.headers[1].value.ptr, "a\\b\x01", 4) == 0);
    CHECK_VIEW(ev.traceparent.ptr, ev.traceparent.len, "00-ab-cd-01");

    /* A header column missing from the table is an error naming it. */
    oc.headers[1].column = "nope";
    CHECK_EQ_INT(outbox_layout_init(&layout, &oc, &rel, &missing), OUTBOX_EMISSING_COLUMN);
    CHECK_STR(missing, "nope");
}

static void test_header_columns_rejected(void)
{
    struct outbox_columns oc;
    const char *why = NULL;
    char a[] = "tenant,", b[] = "x=id", c[] = "a=h,b=h", d[] = "=h", e[] = "traceparent";
    char many[200] = "";

    outbox_columns_default(&oc);
    CHECK(!outbox_header_columns_parse(a, &oc, &why)); /* empty entry */
    CHECK(!outbox_header_columns_parse(b, &oc, &why)); /* the relay's own header */
    CHECK(strstr(why, "sets itself") != NULL);
    CHECK(!outbox_header_columns_parse(c, &oc, &why)); /* the same header twice */
    CHECK(!outbox_header_columns_parse(d, &oc, &why));
    CHECK(!outbox_header_columns_parse(e, &oc, &why));
    for (int i = 0; i < 17; i++)
        snprintf(many + strlen(many), sizeof(many) - strlen(many), "%sc%d", i ? "," : "", i);
    CHECK(!outbox_header_columns_parse(many, &oc, &why));
    CHECK(strstr(why, "16") != NULL);
}

static void test_bytea_decode(void)
{
    uint8_t out[32];

    CHECK_EQ_INT(outbox_bytea_decode("\\x", 2, out), 0);
    CHECK_EQ_INT(outbox_bytea_decode("\\xDEadbeef", 10, out), 4);
    CHECK(memcmp(out, "\xde\xad\xbe\xef", 4) == 0);
    CHECK_EQ_INT(outbox_bytea_decode("\\xabc", 5, out), -1); /* odd digits */
    CHECK_EQ_INT(outbox_bytea_decode("\\xzz", 4, out), -1);  /* not hex */
    CHECK_EQ_INT(outbox_bytea_decode("plain", 5, out), 5);   /* escape format */
    CHECK_EQ_INT(outbox_bytea_decode("\\377\\000", 8, out), 2);
    CHECK(out[0] == 0xff && out[1] == 0);
    CHECK_EQ_INT(outbox_bytea_decode("\\", 1, out), -1);    /* a lone backslash */
    CHECK_EQ_INT(outbox_bytea_decode("\\400", 4, out), -1); /* > 0377 */
    CHECK_EQ_INT(outbox_bytea_decode("\\01", 3, out), -1);  /* cut short */
    CHECK_EQ_INT(outbox_bytea_decode("", 0, out), 0);
}

static void test_traceparent_extract(void)
{
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    struct pgout_str v;

    v = outbox_traceparent_extract(view(tp));
    CHECK_VIEW(v.ptr, v.len, tp);
    v = outbox_traceparent_extract(view("  00-x-y-01 \n"));
    CHECK_VIEW(v.ptr, v.len, "00-x-y-01");
    /* java.util.Properties as Debezium's outbox extension stores it */
    v = outbox_traceparent_extract(
        view("#Mon Jan 01 00:00:00 UTC 2024\r\ntracestate=a\\=b\r\ntraceparent="
             "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n"));
    CHECK_VIEW(v.ptr, v.len, tp);
    v = outbox_traceparent_extract(view("traceparent : 00-a-b-01"));
    CHECK_VIEW(v.ptr, v.len, "00-a-b-01");
    v = outbox_traceparent_extract(view("   "));
    CHECK(v.ptr == NULL);
    v = outbox_traceparent_extract((struct pgout_str){NULL, 0});
    CHECK(v.ptr == NULL);
}

static void test_topic_routed_by_value(void)
{
    char buf[256];
    struct outbox_event ev = sample("Order");

    /* Debezium's route.topic.replacement default works unchanged. */
    CHECK(outbox_topic("outbox.event.${routedByValue}", &ev, buf, sizeof(buf)));
    CHECK_STR(buf, "outbox.event.Order");
    CHECK(!outbox_topic_uses_event_type("outbox.event.${routedByValue}"));
    CHECK(outbox_topic_uses_event_type("x.${event_type}"));
}

int main(void)
{
    RUN(test_topic_template);
    RUN(test_topic_rejects_invalid);
    RUN(test_timestamp);
    RUN(test_event_from_tuple);
    RUN(test_mapped_columns);
    RUN(test_header_columns_rejected);
    RUN(test_bytea_decode);
    RUN(test_traceparent_extract);
    RUN(test_topic_routed_by_value);
    return check_summary();
}
