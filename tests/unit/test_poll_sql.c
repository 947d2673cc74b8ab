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

static void test_select(void)
{
    char buf[1024];

    CHECK(poll_sql_select("public", "outbox", false, buf, sizeof(buf)));
    CHECK_STR(buf, "SELECT id::text, aggregate_type::text, aggregate_id::text, event_type::text,"
                   " payload::text, (extract(epoch FROM created_at) * 1000000)::bigint"
                   " FROM \"public\".\"outbox\" WHERE published_at IS NULL"
                   " ORDER BY created_at, id LIMIT $1 FOR UPDATE SKIP LOCKED");
    CHECK(poll_sql_select("My Schema", "o\"x", true, buf, sizeof(buf)));
    CHECK(strstr(buf, " FROM \"My Schema\".\"o\"\"x\" WHERE ") != NULL);
    CHECK(strstr(buf, "extract(epoch FROM coalesce(pg_catalog.pg_xact_commit_timestamp(xmin), "
                      "created_at))") != NULL);
    CHECK(!poll_sql_select("", "outbox", false, buf, sizeof(buf)));
    CHECK(!poll_sql_select("public", "", false, buf, sizeof(buf)));
    CHECK(!poll_sql_select("public", "outbox", false, buf, 100)); /* does not fit */
}

static void test_mark(void)
{
    char buf[256];

    CHECK(poll_sql_mark("public", "outbox", buf, sizeof(buf)));
    CHECK_STR(
        buf, "UPDATE \"public\".\"outbox\" SET published_at = pg_catalog.now() WHERE id = ANY($1)");
    CHECK(poll_sql_mark("s", "t\"", buf, sizeof(buf)));
    CHECK_STR(buf, "UPDATE \"s\".\"t\"\"\" SET published_at = pg_catalog.now() WHERE id = ANY($1)");
    CHECK(!poll_sql_mark("s", "t", buf, 20));
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
    RUN(test_mark);
    RUN(test_array);
    return check_summary();
}
