/*
 * Test-only pgoutput encoder: appends messages to a growable byte buffer in
 * the field order of PostgreSQL's proto.c (logicalrep_write_*), so unit tests
 * and fuzz seed generators can build any message, valid or deliberately not.
 * Aborts on OOM (xmem); never used by the relay itself.
 */
#ifndef ORDERS_TESTS_PGOUT_BUILD_H
#define ORDERS_TESTS_PGOUT_BUILD_H

#include <stddef.h>
#include <stdint.h>

/* A growable buffer; embed it and pair pgout_build_init with pgout_build_fini. */
struct pgout_build {
    uint8_t *data;
    size_t len;
    size_t cap;
};

/* One column of a Relation message. */
struct pgout_build_relcol {
    uint8_t flags; /* 1 = part of the replica identity */
    const char *name;
    uint32_t type_oid;
    int32_t typmod;
};

/* One TupleData column: kind 'n'/'u' carry no data, 't'/'b' carry len bytes. */
struct pgout_build_val {
    char kind;
    const void *data;
    uint32_t len;
};

void pgout_build_init(struct pgout_build *b);
/* Frees the bytes; the struct may be initialized again. */
void pgout_build_fini(struct pgout_build *b);
/* Empties the buffer, keeping its memory. */
void pgout_build_reset(struct pgout_build *b);

/* Raw big-endian writers (pq_sendbyte/int16/int32/int64/string/bytes). */
void pgout_build_u8(struct pgout_build *b, uint8_t v);
void pgout_build_u16(struct pgout_build *b, uint16_t v);
void pgout_build_u32(struct pgout_build *b, uint32_t v);
void pgout_build_u64(struct pgout_build *b, uint64_t v);
void pgout_build_cstr(struct pgout_build *b, const char *s); /* with its NUL */
void pgout_build_bytes(struct pgout_build *b, const void *p, size_t n);

/* Column value helpers: text("abc") -> {'t', "abc", 3}. */
struct pgout_build_val pgout_build_text(const char *s);
struct pgout_build_val pgout_build_null(void);
struct pgout_build_val pgout_build_unchanged(void);
struct pgout_build_val pgout_build_binary(const void *p, uint32_t len);

/* TupleData: Int16 ncols, then kind [Int32 len, bytes] per column. */
void pgout_build_tuple(struct pgout_build *b, uint16_t ncols, const struct pgout_build_val *vals);

/*
 * Whole messages, tag byte first. Where proto.c writes "[xid] if
 * TransactionIdIsValid(xid)", xid 0 means "not streaming": no xid is written.
 */
void pgout_build_begin(struct pgout_build *b, uint64_t final_lsn, int64_t commit_time,
                       uint32_t xid);
void pgout_build_commit(struct pgout_build *b, uint8_t flags, uint64_t commit_lsn, uint64_t end_lsn,
                        int64_t commit_time);
void pgout_build_origin(struct pgout_build *b, uint64_t origin_lsn, const char *name);
void pgout_build_relation(struct pgout_build *b, uint32_t xid, uint32_t relid, const char *nspname,
                          const char *relname, char replident, uint16_t ncols,
                          const struct pgout_build_relcol *cols);
void pgout_build_type(struct pgout_build *b, uint32_t xid, uint32_t type_oid, const char *nspname,
                      const char *typname);
void pgout_build_insert(struct pgout_build *b, uint32_t xid, uint32_t relid, uint16_t ncols,
                        const struct pgout_build_val *newvals);
/* old_kind 0 writes no old tuple; 'K' or 'O' writes old_ncols/oldvals first. */
void pgout_build_update(struct pgout_build *b, uint32_t xid, uint32_t relid, char old_kind,
                        uint16_t old_ncols, const struct pgout_build_val *oldvals, uint16_t ncols,
                        const struct pgout_build_val *newvals);
void pgout_build_delete(struct pgout_build *b, uint32_t xid, uint32_t relid, char old_kind,
                        uint16_t ncols, const struct pgout_build_val *oldvals);
void pgout_build_truncate(struct pgout_build *b, uint32_t xid, uint32_t nrelids, uint8_t flags,
                          const uint32_t *relids);
void pgout_build_message(struct pgout_build *b, uint32_t xid, uint8_t flags, uint64_t lsn,
                         const char *prefix, uint32_t len, const void *content);
void pgout_build_stream_start(struct pgout_build *b, uint32_t xid, uint8_t first_segment);
void pgout_build_stream_stop(struct pgout_build *b);
void pgout_build_stream_commit(struct pgout_build *b, uint32_t xid, uint8_t flags,
                               uint64_t commit_lsn, uint64_t end_lsn, int64_t commit_time);
void pgout_build_stream_abort(struct pgout_build *b, uint32_t xid, uint32_t subxid);

#endif
