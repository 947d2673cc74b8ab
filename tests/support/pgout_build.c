/*
 * Test-only pgoutput encoder mirroring proto.c's logicalrep_write_* functions.
 * Writes whatever it is told, including invalid flags and markers, so tests
 * can build corruptions; validation is the decoder's job.
 */
#include "pgout_build.h"

#include <stdlib.h>
#include <string.h>

#include "be.h"
#include "xmem.h"

static void reserve(struct pgout_build *b, size_t n)
{
    size_t cap = b->cap ? b->cap : 64;

    if (b->len + n <= b->cap)
        return;
    while (cap < b->len + n)
        cap *= 2;
    b->data = xrealloc(b->data, cap);
    b->cap = cap;
}

void pgout_build_init(struct pgout_build *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void pgout_build_fini(struct pgout_build *b)
{
    free(b->data);
    pgout_build_init(b);
}

void pgout_build_reset(struct pgout_build *b)
{
    b->len = 0;
}

void pgout_build_bytes(struct pgout_build *b, const void *p, size_t n)
{
    if (n == 0)
        return;
    reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void pgout_build_u8(struct pgout_build *b, uint8_t v)
{
    pgout_build_bytes(b, &v, 1);
}

void pgout_build_u16(struct pgout_build *b, uint16_t v)
{
    uint8_t p[2] = {(uint8_t)(v >> 8), (uint8_t)v};

    pgout_build_bytes(b, p, sizeof(p));
}

void pgout_build_u32(struct pgout_build *b, uint32_t v)
{
    uint8_t p[4];

    be_put32(p, v);
    pgout_build_bytes(b, p, sizeof(p));
}

void pgout_build_u64(struct pgout_build *b, uint64_t v)
{
    uint8_t p[8];

    be_put64(p, v);
    pgout_build_bytes(b, p, sizeof(p));
}

void pgout_build_cstr(struct pgout_build *b, const char *s)
{
    pgout_build_bytes(b, s, strlen(s) + 1);
}

struct pgout_build_val pgout_build_text(const char *s)
{
    struct pgout_build_val v = {'t', s, (uint32_t)strlen(s)};

    return v;
}

struct pgout_build_val pgout_build_null(void)
{
    struct pgout_build_val v = {'n', NULL, 0};

    return v;
}

struct pgout_build_val pgout_build_unchanged(void)
{
    struct pgout_build_val v = {'u', NULL, 0};

    return v;
}

struct pgout_build_val pgout_build_binary(const void *p, uint32_t len)
{
    struct pgout_build_val v = {'b', p, len};

    return v;
}

/* logicalrep_write_tuple */
void pgout_build_tuple(struct pgout_build *b, uint16_t ncols, const struct pgout_build_val *vals)
{
    pgout_build_u16(b, ncols);
    for (uint16_t i = 0; i < ncols; i++) {
        pgout_build_u8(b, (uint8_t)vals[i].kind);
        if (vals[i].kind == 't' || vals[i].kind == 'b') {
            pgout_build_u32(b, vals[i].len);
            pgout_build_bytes(b, vals[i].data, vals[i].len);
        }
    }
}

static void put_xid(struct pgout_build *b, uint32_t xid)
{
    if (xid != 0)
        pgout_build_u32(b, xid);
}

void pgout_build_begin(struct pgout_build *b, uint64_t final_lsn, int64_t commit_time, uint32_t xid)
{
    pgout_build_u8(b, 'B');
    pgout_build_u64(b, final_lsn);
    pgout_build_u64(b, (uint64_t)commit_time);
    pgout_build_u32(b, xid);
}

void pgout_build_commit(struct pgout_build *b, uint8_t flags, uint64_t commit_lsn, uint64_t end_lsn,
                        int64_t commit_time)
{
    pgout_build_u8(b, 'C');
    pgout_build_u8(b, flags);
    pgout_build_u64(b, commit_lsn);
    pgout_build_u64(b, end_lsn);
    pgout_build_u64(b, (uint64_t)commit_time);
}

void pgout_build_origin(struct pgout_build *b, uint64_t origin_lsn, const char *name)
{
    pgout_build_u8(b, 'O');
    pgout_build_u64(b, origin_lsn);
    pgout_build_cstr(b, name);
}

void pgout_build_relation(struct pgout_build *b, uint32_t xid, uint32_t relid, const char *nspname,
                          const char *relname, char replident, uint16_t ncols,
                          const struct pgout_build_relcol *cols)
{
    pgout_build_u8(b, 'R');
    put_xid(b, xid);
    pgout_build_u32(b, relid);
    pgout_build_cstr(b, nspname);
    pgout_build_cstr(b, relname);
    pgout_build_u8(b, (uint8_t)replident);
    pgout_build_u16(b, ncols);
    for (uint16_t i = 0; i < ncols; i++) {
        pgout_build_u8(b, cols[i].flags);
        pgout_build_cstr(b, cols[i].name);
        pgout_build_u32(b, cols[i].type_oid);
        pgout_build_u32(b, (uint32_t)cols[i].typmod);
    }
}

void pgout_build_type(struct pgout_build *b, uint32_t xid, uint32_t type_oid, const char *nspname,
                      const char *typname)
{
    pgout_build_u8(b, 'Y');
    put_xid(b, xid);
    pgout_build_u32(b, type_oid);
    pgout_build_cstr(b, nspname);
    pgout_build_cstr(b, typname);
}

void pgout_build_insert(struct pgout_build *b, uint32_t xid, uint32_t relid, uint16_t ncols,
                        const struct pgout_build_val *newvals)
{
    pgout_build_u8(b, 'I');
    put_xid(b, xid);
    pgout_build_u32(b, relid);
    pgout_build_u8(b, 'N');
    pgout_build_tuple(b, ncols, newvals);
}

void pgout_build_update(struct pgout_build *b, uint32_t xid, uint32_t relid, char old_kind,
                        uint16_t old_ncols, const struct pgout_build_val *oldvals, uint16_t ncols,
                        const struct pgout_build_val *newvals)
{
    pgout_build_u8(b, 'U');
    put_xid(b, xid);
    pgout_build_u32(b, relid);
    if (old_kind != 0) {
        pgout_build_u8(b, (uint8_t)old_kind);
        pgout_build_tuple(b, old_ncols, oldvals);
    }
    pgout_build_u8(b, 'N');
    pgout_build_tuple(b, ncols, newvals);
}

void pgout_build_delete(struct pgout_build *b, uint32_t xid, uint32_t relid, char old_kind,
                        uint16_t ncols, const struct pgout_build_val *oldvals)
{
    pgout_build_u8(b, 'D');
    put_xid(b, xid);
    pgout_build_u32(b, relid);
    pgout_build_u8(b, (uint8_t)old_kind);
    pgout_build_tuple(b, ncols, oldvals);
}

void pgout_build_truncate(struct pgout_build *b, uint32_t xid, uint32_t nrelids, uint8_t flags,
                          const uint32_t *relids)
{
    pgout_build_u8(b, 'T');
    put_xid(b, xid);
    pgout_build_u32(b, nrelids);
    pgout_build_u8(b, flags);
    for (uint32_t i = 0; i < nrelids; i++)
        pgout_build_u32(b, relids[i]);
}

void pgout_build_message(struct pgout_build *b, uint32_t xid, uint8_t flags, uint64_t lsn,
                         const char *prefix, uint32_t len, const void *content)
{
    pgout_build_u8(b, 'M');
    put_xid(b, xid);
    pgout_build_u8(b, flags);
    pgout_build_u64(b, lsn);
    pgout_build_cstr(b, prefix);
    pgout_build_u32(b, len);
    pgout_build_bytes(b, content, len);
}

void pgout_build_stream_start(struct pgout_build *b, uint32_t xid, uint8_t first_segment)
{
    pgout_build_u8(b, 'S');
    pgout_build_u32(b, xid);
    pgout_build_u8(b, first_segment);
}

void pgout_build_stream_stop(struct pgout_build *b)
{
    pgout_build_u8(b, 'E');
}

void pgout_build_stream_commit(struct pgout_build *b, uint32_t xid, uint8_t flags,
                               uint64_t commit_lsn, uint64_t end_lsn, int64_t commit_time)
{
    pgout_build_u8(b, 'c');
    pgout_build_u32(b, xid);
    pgout_build_u8(b, flags);
    pgout_build_u64(b, commit_lsn);
    pgout_build_u64(b, end_lsn);
    pgout_build_u64(b, (uint64_t)commit_time);
}

void pgout_build_stream_abort(struct pgout_build *b, uint32_t xid, uint32_t subxid)
{
    pgout_build_u8(b, 'A');
    pgout_build_u32(b, xid);
    pgout_build_u32(b, subxid);
}
