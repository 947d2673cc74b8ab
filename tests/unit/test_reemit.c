/* The re-emit request (JSON both ways, --ids) and the query that serves it. */
#include <stdlib.h>

#include "cdc/reemit.h"
#include "unit/check.h"

static bool parse(const char *s, struct reemit_request *req, const char **why)
{
    return reemit_request_parse((const uint8_t *)s, strlen(s), req, why);
}

static void test_ids(void)
{
    struct reemit_request req;
    char long_id[REEMIT_ID_MAX + 1];

    memset(&req, 0, sizeof(req));
    CHECK(reemit_parse_ids("a..b", &req));
    CHECK_STR(req.first_id, "a");
    CHECK_STR(req.last_id, "b");
    CHECK(req.kind == REEMIT_IDS);
    CHECK(reemit_parse_ids("7", &req));
    CHECK_STR(req.first_id, "7");
    CHECK_STR(req.last_id, "7");
    /* the first ".." splits; the upper bound may hold dots */
    CHECK(reemit_parse_ids("1.5..2..3", &req));
    CHECK_STR(req.first_id, "1.5");
    CHECK_STR(req.last_id, "2..3");
    CHECK(!reemit_parse_ids("", &req));
    CHECK(!reemit_parse_ids("..b", &req));
    CHECK(!reemit_parse_ids("a..", &req));
    memset(long_id, 'x', REEMIT_ID_MAX);
    long_id[REEMIT_ID_MAX] = '\0';
    CHECK(!reemit_parse_ids(long_id, &req));
}

static void test_round_trip(void)
{
    struct reemit_request req = {.kind = REEMIT_IDS}, back;
    const char *why = NULL;
    char *json;

    snprintf(req.slot, sizeof(req.slot), "orders_cdc");
    snprintf(req.first_id, sizeof(req.first_id), "a\"b");
    snprintf(req.last_id, sizeof(req.last_id), "z");
    req.snapshot = "100:105:101,103";
    json = reemit_request_format(&req);
    CHECK_STR(json, "{\"first_id\":\"a\\\"b\",\"last_id\":\"z\",\"slot\":\"orders_cdc\","
                    "\"snapshot\":\"100:105:101,103\",\"v\":1}");
    CHECK(parse(json, &back, &why));
    CHECK(back.kind == REEMIT_IDS);
    CHECK_STR(back.slot, "orders_cdc");
    CHECK_STR(back.first_id, "a\"b");
    CHECK_STR(back.last_id, "z");
    CHECK_STR(back.snapshot, "100:105:101,103");
    reemit_request_free(&back);
    free(json);

    req.kind = REEMIT_TIME;
    req.since_us = 1764892800000000;
    req.until_us = 1764896400000000;
    req.snapshot = "7:7:";
    json = reemit_request_format(&req);
    CHECK(parse(json, &back, &why));
    CHECK(back.kind == REEMIT_TIME);
    CHECK(back.since_us == 1764892800000000 && back.until_us == 1764896400000000);
    CHECK_STR(back.snapshot, "7:7:");
    reemit_request_free(&back);
    reemit_request_free(NULL);
    free(json);
}

static void test_rejects(void)
{
    static const char *const bad[] = {
        "",
        "[]",
        "{\"v\":2,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"slot\":\"\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":7,\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"slot\":\"s\",\"since_us\":5,\"until_us\":5,\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"slot\":\"s\",\"since_us\":\"5\",\"until_us\":6,\"snapshot\":\"1:2:\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2:3,\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1::3\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2:3;\"}",
        "{\"v\":1,\"slot\":\"s\",\"first_id\":\"a\\u0000\",\"last_id\":\"b\",\"snapshot\":\"1:2:"
        "\"}",
        "{\"v\":1,\"v\":1,\"slot\":\"s\",\"first_id\":\"a\",\"last_id\":\"b\",\"snapshot\":\"1:2:"
        "\"}",
        NULL,
    };
    struct reemit_request req;

    for (int i = 0; bad[i] != NULL; i++) {
        const char *why = NULL;

        CHECK(!parse(bad[i], &req, &why));
        CHECK(why != NULL);
        CHECK(req.snapshot == NULL);
    }
}

static void layout_for(struct outbox_layout *l, const struct outbox_columns *c,
                       enum outbox_ts_kind ts)
{
    memset(l, 0, sizeof(*l));
    l->cols = c;
    l->traceparent = -1;
    l->timestamp = ts == OUTBOX_TS_NONE ? -1 : 5;
    l->timestamp_kind = ts;
}

static void test_sql(void)
{
    struct outbox_columns c;
    struct outbox_layout l;
    char sql[16384];

    outbox_columns_default(&c);
    layout_for(&l, &c, OUTBOX_TS_TIME);
    CHECK(reemit_sql_select("public", "outbox", &l, REEMIT_IDS, false, sql, sizeof(sql)));
    CHECK(strstr(sql, "SELECT t.\"id\"::text, t.\"aggregate_type\"::text,") == sql);
    CHECK(strstr(sql, " FROM \"public\".\"outbox\" AS t ") != NULL);
    CHECK(strstr(sql, "WHERE t.\"id\" >= $1 AND t.\"id\" <= $2 AND "
                      "pg_catalog.pg_visible_in_snapshot(") != NULL);
    CHECK(strstr(sql, "$3::pg_catalog.pg_snapshot) ORDER BY 6, t.\"id\"") != NULL);
    CHECK(strstr(sql, "(extract(epoch FROM t.\"created_at\") * 1000000)::bigint, ") != NULL);
    CHECK(strstr(sql, "NULL::text") != NULL); /* no traceparent column */

    CHECK(reemit_sql_select("public", "outbox", &l, REEMIT_TIME, true, sql, sizeof(sql)));
    CHECK(strstr(sql, "t.\"created_at\" >= pg_catalog.to_timestamp($1::pg_catalog.float8 / "
                      "1000000) AND t.\"created_at\" < ") != NULL);
    CHECK(strstr(sql, "coalesce(pg_catalog.pg_xact_commit_timestamp(xmin), t.\"created_at\")") !=
          NULL);

    layout_for(&l, &c, OUTBOX_TS_EPOCH_MS);
    CHECK(reemit_sql_select("s", "t", &l, REEMIT_TIME, false, sql, sizeof(sql)));
    CHECK(strstr(sql, "t.\"created_at\" >= pg_catalog.div($1::pg_catalog.int8, 1000)") != NULL);

    /* no time column: ids only, ordered by id, no row time */
    layout_for(&l, &c, OUTBOX_TS_NONE);
    CHECK(!reemit_sql_select("s", "t", &l, REEMIT_TIME, false, sql, sizeof(sql)));
    CHECK(reemit_sql_select("s", "t", &l, REEMIT_IDS, false, sql, sizeof(sql)));
    CHECK(strstr(sql, "NULL::pg_catalog.int8") != NULL);
    CHECK(strstr(sql, "ORDER BY t.\"id\"") != NULL);
    CHECK(!reemit_sql_select("s", "t", &l, REEMIT_IDS, false, sql, 100));
}

int main(void)
{
    RUN(test_ids);
    RUN(test_round_trip);
    RUN(test_rejects);
    RUN(test_sql);
    return check_summary();
}
