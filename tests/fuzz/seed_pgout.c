/* fuzz-sources: tests/support/pgout_build.c common/xmem.c */
/*
 * Writes synthetic seed inputs for fuzz_pgout into the directory given as
 * argv[1], one message per file, built with the test encoder: the shapes the
 * captured PG15 fixtures lack (streamed variants of every change, binary and
 * 'u' columns, 1600-column tuples, proto 4 Stream Abort, empty strings).
 * Run by tests/fuzz/run.sh; not part of any build.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/pgout.h"
#include "support/pgout_build.h"

static int nseeds;

static void save(const char *dir, const char *name, struct pgout_build *b)
{
    char path[1024];
    FILE *f;

    snprintf(path, sizeof(path), "%s/synthetic-%s", dir, name);
    f = fopen(path, "wb");
    if (f == NULL || fwrite(b->data, 1, b->len, f) != b->len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
    nseeds++;
    pgout_build_reset(b);
}

int main(int argc, char **argv)
{
    static struct pgout_build_val many[PGOUT_MAX_COLS];
    static struct pgout_build_relcol relcols[PGOUT_MAX_COLS];
    struct pgout_build b;
    const uint8_t bin[4] = {0xde, 0xad, 0xbe, 0xef};
    struct pgout_build_val vals[4] = {pgout_build_text("42"), pgout_build_null(),
                                      pgout_build_unchanged(), pgout_build_binary(bin, 4)};
    struct pgout_build_relcol cols[2] = {{1, "id", 23, -1}, {0, "payload", 3802, -1}};
    uint32_t relids[3] = {16384, 16385, 16386};
    const char *dir;

    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    dir = argv[1];
    pgout_build_init(&b);

    for (uint32_t xid = 0; xid <= 900; xid += 900) {
        char name[64];
        const char *sfx = xid ? "-streamed" : "";

        pgout_build_relation(&b, xid, 16384, "", "t", 'i', 2, cols);
        snprintf(name, sizeof(name), "R%s", sfx);
        save(dir, name, &b);
        pgout_build_type(&b, xid, 16392, "public", "mood");
        snprintf(name, sizeof(name), "Y%s", sfx);
        save(dir, name, &b);
        pgout_build_insert(&b, xid, 16384, 4, vals);
        snprintf(name, sizeof(name), "I%s", sfx);
        save(dir, name, &b);
        pgout_build_update(&b, xid, 16384, 'O', 4, vals, 4, vals);
        snprintf(name, sizeof(name), "U-O%s", sfx);
        save(dir, name, &b);
        pgout_build_update(&b, xid, 16384, 'K', 1, vals, 2, vals);
        snprintf(name, sizeof(name), "U-K%s", sfx);
        save(dir, name, &b);
        pgout_build_update(&b, xid, 16384, 0, 0, NULL, 3, vals);
        snprintf(name, sizeof(name), "U%s", sfx);
        save(dir, name, &b);
        pgout_build_delete(&b, xid, 16384, 'K', 2, vals);
        snprintf(name, sizeof(name), "D%s", sfx);
        save(dir, name, &b);
        pgout_build_truncate(&b, xid, 3, 3, relids);
        snprintf(name, sizeof(name), "T%s", sfx);
        save(dir, name, &b);
        pgout_build_message(&b, xid, 1, 0x1234, "", 4, bin);
        snprintf(name, sizeof(name), "M%s", sfx);
        save(dir, name, &b);
    }

    pgout_build_begin(&b, 0x1000, 1, 733);
    save(dir, "B", &b);
    pgout_build_commit(&b, 0, 0x1000, 0x1030, 1);
    save(dir, "C", &b);
    pgout_build_origin(&b, 0xABCDEF, "");
    save(dir, "O-empty", &b);
    pgout_build_stream_start(&b, 900, 1);
    save(dir, "S", &b);
    pgout_build_stream_stop(&b);
    save(dir, "E", &b);
    pgout_build_stream_commit(&b, 900, 0, 0x2000, 0x2030, 5);
    save(dir, "c", &b);
    pgout_build_stream_abort(&b, 900, 901);
    save(dir, "A", &b);
    pgout_build_stream_abort(&b, 900, 900);
    pgout_build_u64(&b, 0x3000);
    pgout_build_u64(&b, 7);
    save(dir, "A-proto4", &b);

    for (int i = 0; i < PGOUT_MAX_COLS; i++) {
        many[i] = vals[i % 4];
        relcols[i] = cols[i % 2];
    }
    pgout_build_insert(&b, 0, 16384, PGOUT_MAX_COLS, many);
    save(dir, "I-maxcols", &b);
    pgout_build_relation(&b, 0, 16384, "public", "wide", 'f', PGOUT_MAX_COLS, relcols);
    save(dir, "R-maxcols", &b);

    pgout_build_fini(&b);
    printf("seed_pgout: %d seeds in %s\n", nseeds, dir);
    return 0;
}
