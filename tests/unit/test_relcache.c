/* Relation cache: put/get/replace, column lookup, unknown relids, growth. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cdc/pgout.h"
#include "cdc/relcache.h"
#include "support/pgout_build.h"
#include "unit/check.h"

static struct pgout_msg msg;

/* Decodes an 'R' built with the test encoder into msg. */
static void make_relation(struct pgout_build *b, uint32_t relid, const char *nsp, const char *name,
                          char replident, uint16_t ncols, const struct pgout_build_relcol *cols)
{
    pgout_build_reset(b);
    pgout_build_relation(b, 0, relid, nsp, name, replident, ncols, cols);
    CHECK_EQ_INT(pgout_decode(b->data, b->len, 1, &msg), PGOUT_OK);
}

static void test_put_get(void)
{
    struct pgout_build b;
    struct relcache *rc = relcache_new();
    const struct pgout_build_relcol cols[] = {
        {1, "id", 2950, -1}, {0, "aggregate_type", 25, -1}, {0, "payload", 3802, -1}};
    const struct relcache_rel *rel;

    pgout_build_init(&b);
    CHECK(relcache_get(rc, 16384) == NULL);
    CHECK_EQ_INT(relcache_count(rc), 0);

    make_relation(&b, 16384, "public", "outbox", 'd', 3, cols);
    rel = relcache_put(rc, &msg);
    CHECK(rel != NULL);
    /* The entry owns copies: scribbling over the wire buffer changes nothing. */
    memset(b.data, 'X', b.len);
    CHECK(relcache_get(rc, 16384) == rel);
    CHECK_EQ_INT(rel->relid, 16384);
    CHECK_STR(rel->nspname, "public");
    CHECK_STR(rel->relname, "outbox");
    CHECK_EQ_INT(rel->replident, 'd');
    CHECK_EQ_INT(rel->ncols, 3);
    CHECK_STR(rel->colnames[0], "id");
    CHECK_STR(rel->colnames[2], "payload");
    CHECK_EQ_INT(rel->typoids[0], 2950);
    CHECK_EQ_INT(rel->typoids[2], 3802);
    CHECK_EQ_INT(relcache_column_index(rel, "id"), 0);
    CHECK_EQ_INT(relcache_column_index(rel, "aggregate_type"), 1);
    CHECK_EQ_INT(relcache_column_index(rel, "payload"), 2);
    CHECK_EQ_INT(relcache_column_index(rel, "Payload"), -1);
    CHECK_EQ_INT(relcache_column_index(rel, "pay"), -1);
    CHECK_EQ_INT(relcache_column_index(rel, ""), -1);
    CHECK(relcache_get(rc, 16385) == NULL);
    CHECK(relcache_get(rc, 0) == NULL);
    CHECK_EQ_INT(relcache_count(rc), 1);

    /* Anything but an 'R' is refused. */
    pgout_build_reset(&b);
    pgout_build_begin(&b, 1, 2, 3);
    CHECK_EQ_INT(pgout_decode(b.data, b.len, 1, &msg), PGOUT_OK);
    CHECK(relcache_put(rc, &msg) == NULL);
    CHECK_EQ_INT(relcache_count(rc), 1);

    pgout_build_fini(&b);
    relcache_free(rc);
}

static void test_replace(void)
{
    struct pgout_build b;
    struct relcache *rc = relcache_new();
    const struct pgout_build_relcol v1[] = {{1, "id", 23, -1}, {0, "a", 25, -1}};
    const struct pgout_build_relcol v2[] = {{1, "id", 20, -1}, {0, "b", 25, -1}, {0, "c", 16, -1}};
    const struct relcache_rel *rel;

    pgout_build_init(&b);
    make_relation(&b, 7, "s", "t", 'd', 2, v1);
    relcache_put(rc, &msg);
    make_relation(&b, 8, "s", "other", 'f', 1, v1);
    relcache_put(rc, &msg);

    /* ALTER TABLE: a new 'R' for relid 7 replaces the entry. */
    make_relation(&b, 7, "s2", "t2", 'f', 3, v2);
    rel = relcache_put(rc, &msg);
    CHECK(rel == relcache_get(rc, 7));
    CHECK_EQ_INT(relcache_count(rc), 2);
    CHECK_STR(rel->nspname, "s2");
    CHECK_STR(rel->relname, "t2");
    CHECK_EQ_INT(rel->replident, 'f');
    CHECK_EQ_INT(rel->ncols, 3);
    CHECK_EQ_INT(rel->typoids[0], 20);
    CHECK_EQ_INT(relcache_column_index(rel, "a"), -1);
    CHECK_EQ_INT(relcache_column_index(rel, "c"), 2);

    /* Zero columns and a pg_catalog ("") namespace are stored as sent. */
    make_relation(&b, 7, "", "empty", 'n', 0, NULL);
    rel = relcache_put(rc, &msg);
    CHECK_EQ_INT(rel->ncols, 0);
    CHECK_STR(rel->nspname, "");
    CHECK_EQ_INT(relcache_column_index(rel, "id"), -1);

    rel = relcache_get(rc, 8);
    CHECK(rel != NULL && strcmp(rel->relname, "other") == 0);

    pgout_build_fini(&b);
    relcache_free(rc);
}

static void test_growth(void)
{
    struct pgout_build b;
    struct relcache *rc = relcache_new();
    const struct pgout_build_relcol cols[] = {{1, "id", 23, -1}};
    uint32_t ids[2000];
    size_t n = 0, wrong = 0;

    pgout_build_init(&b);
    /* Sequential OIDs as PostgreSQL hands them out, plus the extremes and
     * values that collide in the low bits. */
    for (uint32_t i = 0; i < 1500; i++)
        ids[n++] = 16384 + i;
    for (uint32_t i = 0; i < 400; i++)
        ids[n++] = 0x10000000u + (i << 20);
    ids[n++] = 0;
    ids[n++] = 1;
    ids[n++] = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        char name[32];

        snprintf(name, sizeof(name), "t%u", (unsigned)ids[i]);
        make_relation(&b, ids[i], "public", name, 'd', 1, cols);
        relcache_put(rc, &msg);
    }
    CHECK_EQ_INT(relcache_count(rc), n);
    for (size_t i = 0; i < n; i++) {
        const struct relcache_rel *rel = relcache_get(rc, ids[i]);
        char name[32];

        snprintf(name, sizeof(name), "t%u", (unsigned)ids[i]);
        if (rel == NULL || rel->relid != ids[i] || strcmp(rel->relname, name) != 0)
            wrong++;
    }
    CHECK_EQ_INT(wrong, 0);
    CHECK(relcache_get(rc, 16384 + 1500) == NULL);
    CHECK(relcache_get(rc, 2) == NULL);

    /* Replacing every entry keeps the count. */
    for (size_t i = 0; i < n; i++) {
        make_relation(&b, ids[i], "public", "again", 'f', 1, cols);
        relcache_put(rc, &msg);
    }
    CHECK_EQ_INT(relcache_count(rc), n);
    CHECK_STR(relcache_get(rc, UINT32_MAX)->relname, "again");

    pgout_build_fini(&b);
    relcache_free(rc);
}

static void test_free_null(void)
{
    relcache_free(NULL);
    relcache_free(relcache_new());
    CHECK(1);
}

int main(void)
{
    RUN(test_put_get);
    RUN(test_replace);
    RUN(test_growth);
    RUN(test_free_null);
    return check_summary();
}
