/* cdc-relay prune's pure parts: the "delivered and old" predicate in both
 * modes and for both kinds of time column, the batch statement's parameter
 * numbering, the partition queries, and which position counts as delivered. */
#include "cdc/prune.h"
#include "cdc/prune_sql.h"

#include <string.h>

#include "unit/check.h"

static const char *const names[] = {"id",      "aggregate_type", "aggregate_id", "event_type",
                                    "payload", "created_at",     "published_at"};

/* A layout over the default columns, created_at of type ts_type. */
static void layout_of(struct outbox_layout *layout, struct outbox_columns *oc, uint32_t ts_type)
{
    static char *colnames[7];
    static uint32_t typoids[7];
    const uint32_t types[] = {2950, 25, 25, 25, 3802, ts_type, 1184};
    struct relcache_rel rel = {.relid = 1, .nspname = "public", .relname = "outbox"};
    const char *missing = NULL;

    outbox_columns_default(oc);
    for (int i = 0; i < 7; i++) {
        colnames[i] = (char *)names[i];
        typoids[i] = types[i];
    }
    rel.ncols = 7;
    rel.colnames = colnames;
    rel.typoids = typoids;
    CHECK_EQ_INT(outbox_layout_init(layout, oc, &rel, &missing), OUTBOX_OK);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void test_cond(void)
{
    char buf[PRUNE_SQL_MAX];
    struct outbox_columns oc;
    struct outbox_layout layout;

    layout_of(&layout, &oc, OUTBOX_TIMESTAMPTZ_OID);
    CHECK(prune_sql_cond(&layout, false, buf, sizeof(buf)));
    CHECK_STR(buf,
              "\"created_at\" < pg_catalog.to_timestamp($1::pg_catalog.float8 / 1000000) "
              "AND pg_catalog.age(xmin) > pg_catalog.age(pg_catalog.xid($2::pg_catalog.xid8))");
    CHECK(prune_sql_cond(&layout, true, buf, sizeof(buf)));
    CHECK_STR(buf, "\"created_at\" < pg_catalog.to_timestamp($1::pg_catalog.float8 / 1000000) "
                   "AND \"published_at\" IS NOT NULL");
    /* bigint Unix milliseconds: the cutoff converted, not the column */
    layout_of(&layout, &oc, 20);
    CHECK(prune_sql_cond(&layout, false, buf, sizeof(buf)));
    CHECK(starts_with(buf, "\"created_at\" < pg_catalog.div($1::pg_catalog.int8, 1000) AND "));
    /* no usable time column, no published column in poll mode, no room */
    layout_of(&layout, &oc, 25);
    CHECK(!prune_sql_cond(&layout, false, buf, sizeof(buf)));
    layout_of(&layout, &oc, OUTBOX_TIMESTAMPTZ_OID);
    oc.published = NULL;
    CHECK(!prune_sql_cond(&layout, true, buf, sizeof(buf)));
    CHECK(!prune_sql_cond(&layout, false, buf, 20));
}

static void test_batch(void)
{
    char buf[PRUNE_SQL_MAX];
    struct outbox_columns oc;
    struct outbox_layout layout;

    layout_of(&layout, &oc, OUTBOX_TIMESTAMPTZ_OID);
    /* slot mode: $1 cutoff, $2 horizon, $3 the tuple id, $4 the limit */
    CHECK(prune_sql_batch("my schema", "out\"box", &layout, false, buf, sizeof(buf)));
    CHECK(strstr(buf, "FROM \"my schema\".\"out\"\"box\" WHERE ctid > $3::pg_catalog.tid AND ") !=
          NULL);
    CHECK(strstr(buf, "LIMIT $4::pg_catalog.int4 FOR UPDATE SKIP LOCKED") != NULL);
    CHECK(strstr(buf, "DELETE FROM \"my schema\".\"out\"\"box\" WHERE ctid = ANY (ARRAY(") != NULL);
    /* poll mode: no horizon, so $2 and $3 */
    CHECK(prune_sql_batch("public", "outbox", &layout, true, buf, sizeof(buf)));
    CHECK(strstr(buf, "ctid > $2::pg_catalog.tid") != NULL);
    CHECK(strstr(buf, "LIMIT $3::pg_catalog.int4") != NULL);
    CHECK(strstr(buf, "$4") == NULL);
    CHECK(!prune_sql_batch("", "outbox", &layout, true, buf, sizeof(buf)));
    CHECK(prune_sql_count("public", "outbox", &layout, false, buf, sizeof(buf)));
    CHECK(starts_with(buf, "SELECT pg_catalog.count(*) FROM \"public\".\"outbox\" WHERE "));
}

static void test_partitions(void)
{
    char buf[PRUNE_SQL_MAX];
    struct outbox_columns oc;
    struct outbox_layout layout;

    layout_of(&layout, &oc, OUTBOX_TIMESTAMPTZ_OID);
    CHECK(prune_sql_partition_check("public", "outbox_d1", &layout, false, buf, sizeof(buf)));
    /* a NULL time keeps the partition */
    CHECK(strstr(buf, ") IS NOT TRUE) FROM \"public\".\"outbox_d1\"") != NULL);
    CHECK(prune_sql_partitions(&layout, buf, sizeof(buf)));
    CHECK(strstr(buf, "'TO \\(''([^'']+)''\\)$'))[1]::pg_catalog.timestamptz <= ") != NULL);
    layout_of(&layout, &oc, 20);
    CHECK(prune_sql_partitions(&layout, buf, sizeof(buf)));
    CHECK(strstr(buf, "'TO \\((-?[0-9]+)\\)$'))[1]::pg_catalog.int8 <= ") != NULL);
    layout_of(&layout, &oc, 25);
    CHECK(!prune_sql_partitions(&layout, buf, sizeof(buf)));
    CHECK(strstr(prune_sql_partitioning(), "pt.partstrat = 'r' AND pt.partnatts = 1") != NULL);
}

static void test_delivered(void)
{
    /* The slot's position, unless the state file (of this slot and
     * cluster) is further: it is not held back by --replay-window. */
    CHECK_EQ_U64(prune_delivered(100, false, 500), 100);
    CHECK_EQ_U64(prune_delivered(100, true, 500), 500);
    CHECK_EQ_U64(prune_delivered(600, true, 500), 600);
    CHECK_EQ_U64(prune_delivered(0, true, 0), 0);
}

int main(void)
{
    RUN(test_cond);
    RUN(test_batch);
    RUN(test_partitions);
    RUN(test_delivered);
    return check_summary();
}
