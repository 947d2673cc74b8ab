/* Poll mode's SQL: identifier quoting from --table, the batch and mark
 * statements, and the array literal of ids. */
#include "cdc/poll_sql.h"

#include <stdlib.h>

#include "unit/check.h"

static void test_quote_ident(void)
{
    char buf[64];

    CHECK(poll_sql_quote_ident("outbox", buf, sizeof(buf)));
    CHECK_STR(buf, "\"outbox\"");
    /* Case is kept: stream mode matches the name exactly, so does poll mode. */
    CHECK(poll_sql_quote_ident("OutBox", buf, sizeof(buf)));
    CHECK_STR(buf, "\"OutBox\"");
    CHECK(poll_sql_quote_ident("a\"b", buf, sizeof(buf)));
    CHECK_STR(buf, "\"a\"\"b\"");
    CHECK(poll_sql_quote_ident("\"", buf, sizeof(buf)));
    CHECK_STR(buf, "\"\"\"\"");
    /* Injection stays inside the identifier. */
    CHECK(poll_sql_quote_ident("x\"; DROP TABLE t; --", buf, sizeof(buf)));
    CHECK_STR(buf, "\"x\"\"; DROP TABLE t; --\"");
    CHECK(poll_sql_quote_ident("with space.dot", buf, sizeof(buf)));
    CHECK_STR(buf, "\"with space.dot\"");
    CHECK(!poll_sql_quote_ident("", buf, sizeof(buf)));
}

static void test_quote_ident_bounds(void)
{
    char buf[8];

    /* "abcde" + quotes + NUL = 8 bytes: fits exactly; one more does not. */
    CHECK(poll_sql_quote_ident("abcde", buf, sizeof(buf)));
    CHECK_STR(buf, "\"abcde\"");
    CHECK(!poll_sql_quote_ident("abcdef", buf, sizeof(buf)));
    /* An escaped quote takes two bytes. */
    CHECK(poll_sql_quote_ident("abc\"", buf, sizeof(buf)));
    CHECK_STR(buf, "\"abc\"\"\"");
    CHECK(!poll_sql_quote_ident("abcd\"", buf, sizeof(buf)));
    CHECK(!poll_sql_quote_ident("a", buf, 2));
}

/* A layout over a table with the given columns (names, type OIDs). */
static void layout_of(struct outbox_layout *layout, const struct outbox_columns *oc,
                      const char *const *names, const uint32_t *types, int n)
{
    static char *colnames[32];
    static uint32_t typoids[32];
    struct relcache_rel rel = {.relid = 1, .nspname = "public", .relname = "t"};
    const char *missing = NULL;

    for (int i = 0; i < n; i++) {
        colnames[i] = (char *)names[i];
        typoids[i] = types[i];
    }
    rel.ncols = (uint16_t)n;
    rel.colnames = colnames;
    rel.typoids = typoids;
    CHECK_EQ_INT(outbox_layout_init(layout, oc, &rel, &missing), OUTBOX_OK);
}

static const char *const default_names[] = {
    "id", "aggregate_type", "aggregate_id", "event_type", "payload", "created_at", "published_at"};
static const uint32_t default_types[] = {2950, 25, 25, 25, 3802, OUTBOX_TIMESTAMPTZ_OID, 1184};

static void test_select(void)
{
    char buf[POLL_SQL_MAX];
    struct outbox_columns oc;
    struct outbox_layout layout;

    outbox_columns_default(&oc);
    layout_of(&layout, &oc, default_names, default_types, 7);
    CHECK(poll_sql_select("public", "outbox", &layout, false, buf, sizeof(buf)));
    CHECK_STR(buf, "SELECT \"id\"::text, \"aggregate_type\"::text, \"aggregate_id\"::text,"
                   " \"event_type\"::text, \"payload\"::text,"
                   " (extract(epoch FROM \"created_at\") * 1000000)::bigint, NULL::text"
                   " FROM \"public\".\"outbox\" WHERE \"published_at\" IS NULL"
                   " ORDER BY \"created_at\", \"id\" LIMIT $1 FOR UPDATE SKIP LOCKED");
    CHECK(poll_sql_select("My Schema", "o\"x", &layout, true, buf, sizeof(buf)));
    CHECK(strstr(buf, " FROM \"My Schema\".\"o\"\"x\" WHERE ") != NULL);
    CHECK(strstr(buf, "extract(epoch FROM coalesce(pg_catalog.pg_xact_commit_timestamp(xmin), "
                      "\"created_at\"))") != NULL);
    CHECK(!poll_sql_select("", "outbox", &layout, false, buf, sizeof(buf)));
    CHECK(!poll_sql_select("public", "", &layout, false, buf, sizeof(buf)));
    CHECK(!poll_sql_select("public", "outbox", &layout, false, buf, 100)); /* does not fit */
}

/* Debezium's column names, a bigint timestamp, a traceparent and header
 * columns; names that need quoting stay inside their quotes. */
static void test_select_mapped(void)
{
    static const char *const names[] = {"id",      "aggregatetype", "aggregateid", "type",
                                        "payload", "timestamp",     "Sent At",     "tp",
                                        "ten\"ant"};
    static const uint32_t types[] = {2950, 1043, 1043, 1043, 17, OUTBOX_INT8_OID, 1184, 25, 25};
    char buf[POLL_SQL_MAX], spec[] = "ten\"ant=tenant";
    struct outbox_columns oc;
    struct outbox_layout layout;
    const char *why = NULL;

    outbox_columns_default(&oc);
    oc.role[OUTBOX_COL_AGGREGATE_TYPE] = "aggregatetype";
    oc.role[OUTBOX_COL_AGGREGATE_ID] = "aggregateid";
    oc.role[OUTBOX_COL_EVENT_TYPE] = "type";
    oc.timestamp = "timestamp";
    oc.published = "Sent At";
    oc.traceparent = "tp";
    CHECK(outbox_header_columns_parse(spec, &oc, &why));
    layout_of(&layout, &oc, names, types, 9);
    CHECK(poll_sql_select("public", "outbox", &layout, false, buf, sizeof(buf)));
    CHECK_STR(
        buf,
        "SELECT \"id\"::text, \"aggregatetype\"::text, \"aggregateid\"::text,"
        " \"type\"::text, \"payload\"::text,"
        " (extract(epoch FROM pg_catalog.to_timestamp(\"timestamp\" / 1000.0)) * 1000000)::bigint,"
        " \"tp\"::text, \"ten\"\"ant\"::text"
        " FROM \"public\".\"outbox\" WHERE \"Sent At\" IS NULL"
        " ORDER BY \"timestamp\", \"id\" LIMIT $1 FOR UPDATE SKIP LOCKED");
    CHECK(poll_sql_mark("public", "outbox", &oc, buf, sizeof(buf)));
    CHECK_STR(
        buf,
        "UPDATE \"public\".\"outbox\" SET \"Sent At\" = pg_catalog.now() WHERE \"id\" = ANY($1)");
    /* Without a usable timestamp column there is no batch query. */
    layout.timestamp_kind = OUTBOX_TS_OTHER;
    CHECK(!poll_sql_select("public", "outbox", &layout, false, buf, sizeof(buf)));
    layout.timestamp = -1;
    CHECK(!poll_sql_select("public", "outbox", &layout, false, buf, sizeof(buf)));
}

/* The audit's statements: every function named in pg_catalog (the session's
 * search_path is pg_catalog anyway), the bounds converted once per query. */
static void test_range_and_ids_exist(void)
{
    static const char *const names[] = {"id",   "aggregatetype", "aggregateid",
                                        "type", "payload",       "timestamp"};
    static const uint32_t types[] = {2950, 1043, 1043, 1043, 3802, OUTBOX_INT8_OID};
    char buf[POLL_SQL_MAX];
    struct outbox_columns oc, mapped;
    struct outbox_layout layout;

    outbox_columns_default(&oc);
    layout_of(&layout, &oc, default_names, default_types, 7);
    CHECK(poll_sql_range("public", "outbox", &layout, buf, sizeof(buf)));
    CHECK_STR(buf, "SELECT \"id\"::text, \"aggregate_type\"::text, \"event_type\"::text"
                   " FROM \"public\".\"outbox\""
                   " WHERE \"created_at\" >= pg_catalog.to_timestamp($1::float8 / 1000000)"
                   " AND \"created_at\" < pg_catalog.to_timestamp($2::float8 / 1000000)");
    CHECK(poll_sql_ids_exist("public", "outbox", &oc, buf, sizeof(buf)));
    CHECK_STR(buf, "SELECT x FROM pg_catalog.unnest($1::text[]) AS x WHERE EXISTS"
                   " (SELECT 1 FROM \"public\".\"outbox\" WHERE \"id\"::text = x)");

    /* Debezium's table: bigint Unix milliseconds, [floor, ceil) of the range. */
    outbox_columns_default(&mapped);
    mapped.role[OUTBOX_COL_AGGREGATE_TYPE] = "aggregatetype";
    mapped.role[OUTBOX_COL_AGGREGATE_ID] = "aggregateid";
    mapped.role[OUTBOX_COL_EVENT_TYPE] = "type";
    mapped.timestamp = "timestamp";
    layout_of(&layout, &mapped, names, types, 6);
    CHECK(poll_sql_range("s", "outboxevent", &layout, buf, sizeof(buf)));
    CHECK_STR(buf, "SELECT \"id\"::text, \"aggregatetype\"::text, \"type\"::text"
                   " FROM \"s\".\"outboxevent\""
                   " WHERE \"timestamp\" >= pg_catalog.div($1::bigint, 1000)"
                   " AND \"timestamp\" < pg_catalog.div($2::bigint + 999, 1000)");
    CHECK(!poll_sql_range("s", "outboxevent", &layout, buf, 100)); /* does not fit */
    layout.timestamp_kind = OUTBOX_TS_OTHER;
    CHECK(!poll_sql_range("s", "outboxevent", &layout, buf, sizeof(buf)));
    CHECK(!poll_sql_ids_exist("", "outboxevent", &mapped, buf, sizeof(buf)));
}

static void test_mark(void)
{
    char buf[256];
    struct outbox_columns oc;

    outbox_columns_default(&oc);
    CHECK(poll_sql_mark("public", "outbox", &oc, buf, sizeof(buf)));
    CHECK_STR(buf, "UPDATE \"public\".\"outbox\" SET \"published_at\" = pg_catalog.now() WHERE "
                   "\"id\" = ANY($1)");
    CHECK(poll_sql_mark("s", "t\"", &oc, buf, sizeof(buf)));
    CHECK_STR(
        buf,
        "UPDATE \"s\".\"t\"\"\" SET \"published_at\" = pg_catalog.now() WHERE \"id\" = ANY($1)");
    CHECK(!poll_sql_mark("s", "t", &oc, buf, 20));
}

static void test_array(void)
{
    const char *ids[] = {"0b7e6c4e-0000-4000-8000-000000000001", "b\"c", "d\\e", "", "x,y}"};
    int lens[] = {-1, -1, -1, -1, -1};
    int cut[] = {3};
    char *s;

    s = poll_sql_array(ids, lens, 0);
    CHECK_STR(s, "{}");
    free(s);
    s = poll_sql_array(ids, lens, 1);
    CHECK_STR(s, "{\"0b7e6c4e-0000-4000-8000-000000000001\"}");
    free(s);
    s = poll_sql_array(ids, lens, 5);
    CHECK_STR(s, "{\"0b7e6c4e-0000-4000-8000-000000000001\",\"b\\\"c\",\"d\\\\e\",\"\",\"x,y}\"}");
    free(s);
    /* An explicit length takes a prefix (PQgetlength gives lengths). */
    s = poll_sql_array(ids, cut, 1);
    CHECK_STR(s, "{\"0b7\"}");
    free(s);
}

int main(void)
{
    RUN(test_quote_ident);
    RUN(test_quote_ident_bounds);
    RUN(test_select);
    RUN(test_select_mapped);
    RUN(test_mark);
    RUN(test_range_and_ids_exist);
    RUN(test_array);
    return check_summary();
}
