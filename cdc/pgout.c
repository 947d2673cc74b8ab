/*
 * pgoutput decoder (docs/protocol.md#pgoutput-messages): one static decode_<msg>() per message
 * type, in the field order of PostgreSQL's proto.c (logicalrep_write_*).
 * Pure: never allocates, logs, touches globals or reads past `len`; every
 * malformed input ends in an error code, which replaces proto.c's elog(ERROR).
 */
#include "pgout.h"

#include <string.h>

#include "be.h"

/* Bounds-checked cursor (pgbouncer's mbuf): a failed read leaves pos alone. */
struct pgout_reader {
    const uint8_t *p;
    size_t len;
    size_t pos;
};

#define NEED(expr)                                                                                 \
    do {                                                                                           \
        if (!(expr))                                                                               \
            return PGOUT_ETRUNC;                                                                   \
    } while (0)

#define NEED_STR(expr)                                                                             \
    do {                                                                                           \
        if (!(expr))                                                                               \
            return PGOUT_EBADSTRING;                                                               \
    } while (0)

#define TRY(expr)                                                                                  \
    do {                                                                                           \
        enum pgout_status try_st_ = (expr);                                                        \
        if (try_st_ != PGOUT_OK)                                                                   \
            return try_st_;                                                                        \
    } while (0)

/* proto.c flag bits; anything else is reserved and rejected. */
#define PGOUT_RELCOL_KEY        0x01 /* LOGICALREP_IS_REPLICA_IDENTITY */
#define PGOUT_MSG_TRANSACTIONAL 0x01 /* MESSAGE_TRANSACTIONAL */
#define PGOUT_TRUNC_FLAGS       0x03 /* TRUNCATE_CASCADE | TRUNCATE_RESTART_SEQS */

/* Smallest encoded relation column: flags, "" name, type OID, typmod. */
#define PGOUT_RELCOL_MIN 10

static size_t rd_left(const struct pgout_reader *rd)
{
    return rd->len - rd->pos;
}

static bool rd_u8(struct pgout_reader *rd, uint8_t *v)
{
    if (rd_left(rd) < 1)
        return false;
    *v = rd->p[rd->pos];
    rd->pos += 1;
    return true;
}

static bool rd_u16(struct pgout_reader *rd, uint16_t *v)
{
    if (rd_left(rd) < 2)
        return false;
    *v = be_get16(rd->p + rd->pos);
    rd->pos += 2;
    return true;
}

static bool rd_u32(struct pgout_reader *rd, uint32_t *v)
{
    if (rd_left(rd) < 4)
        return false;
    *v = be_get32(rd->p + rd->pos);
    rd->pos += 4;
    return true;
}

static bool rd_u64(struct pgout_reader *rd, uint64_t *v)
{
    if (rd_left(rd) < 8)
        return false;
    *v = be_get64(rd->p + rd->pos);
    rd->pos += 8;
    return true;
}

static bool rd_i64(struct pgout_reader *rd, int64_t *v)
{
    uint64_t u;

    if (!rd_u64(rd, &u))
        return false;
    *v = (int64_t)u;
    return true;
}

/* NUL-terminated String; the view excludes the NUL. False if no NUL is left. */
static bool rd_cstr(struct pgout_reader *rd, struct pgout_str *s)
{
    const uint8_t *start = rd->p + rd->pos;
    const uint8_t *nul;

    if (rd_left(rd) == 0)
        return false;
    nul = memchr(start, '\0', rd_left(rd));
    if (nul == NULL)
        return false;
    s->ptr = (const char *)start;
    s->len = (size_t)(nul - start);
    rd->pos += s->len + 1;
    return true;
}

static bool rd_bytes(struct pgout_reader *rd, size_t n, const uint8_t **v)
{
    if (rd_left(rd) < n)
        return false;
    *v = rd->p + rd->pos;
    rd->pos += n;
    return true;
}

/* [xid]: Int32, present only for changes inside a streamed block (proto >= 2). */
static bool rd_xid(struct pgout_reader *rd, bool streamed, struct pgout_msg *out)
{
    if (!streamed)
        return true;
    if (!rd_u32(rd, &out->xid))
        return false;
    out->has_xid = true;
    return true;
}

/* TupleData: Int16 ncols, then per column Byte1 kind [Int32 len, Byte[len]]. */
static enum pgout_status decode_tuple(struct pgout_reader *rd, struct pgout_col *storage,
                                      struct pgout_tuple *tup)
{
    uint16_t ncols;

    NEED(rd_u16(rd, &ncols));
    if (ncols > PGOUT_MAX_COLS)
        return PGOUT_ETOOMANYCOLS;
    /* Every column has at least its kind byte. */
    NEED(ncols <= rd_left(rd));
    for (uint16_t i = 0; i < ncols; i++) {
        struct pgout_col *col = &storage[i];
        uint8_t kind;

        NEED(rd_u8(rd, &kind));
        col->kind = (char)kind;
        col->data = NULL;
        col->len = 0;
        switch (kind) {
        case PGOUT_COL_NULL:
        case PGOUT_COL_UNCHANGED:
            break;
        case PGOUT_COL_TEXT:
        case PGOUT_COL_BINARY:
            NEED(rd_u32(rd, &col->len));
            NEED(rd_bytes(rd, col->len, &col->data));
            break;
        default:
            return PGOUT_EBADKIND;
        }
    }
    tup->ncols = ncols;
    tup->cols = storage;
    return PGOUT_OK;
}

/* B: Int64 final_lsn, Int64 commit_time, Int32 xid. */
static enum pgout_status decode_begin(struct pgout_reader *rd, struct pgout_msg *out)
{
    NEED(rd_u64(rd, &out->u.begin.final_lsn));
    NEED(rd_i64(rd, &out->u.begin.commit_time));
    NEED(rd_u32(rd, &out->u.begin.xid));
    return PGOUT_OK;
}

/* C: Int8 flags (0), Int64 commit_lsn, Int64 end_lsn, Int64 commit_time. */
static enum pgout_status decode_commit(struct pgout_reader *rd, struct pgout_msg *out)
{
    NEED(rd_u8(rd, &out->u.commit.flags));
    if (out->u.commit.flags != 0)
        return PGOUT_EBADFLAGS;
    NEED(rd_u64(rd, &out->u.commit.commit_lsn));
    NEED(rd_u64(rd, &out->u.commit.end_lsn));
    NEED(rd_i64(rd, &out->u.commit.commit_time));
    return PGOUT_OK;
}

/* O: Int64 origin commit LSN, String origin name. */
static enum pgout_status decode_origin(struct pgout_reader *rd, struct pgout_msg *out)
{
    NEED(rd_u64(rd, &out->u.origin.commit_lsn));
    NEED_STR(rd_cstr(rd, &out->u.origin.name));
    return PGOUT_OK;
}

/*
 * R: [xid] Int32 relid, String nspname, String relname, Int8 replident,
 * Int16 ncols, per column: Int8 flags, String name, Int32 type OID, Int32 typmod.
 */
static enum pgout_status decode_relation(struct pgout_reader *rd, bool streamed,
                                         struct pgout_msg *out)
{
    uint8_t replident;
    uint16_t ncols;

    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u32(rd, &out->u.relation.relid));
    NEED_STR(rd_cstr(rd, &out->u.relation.nspname));
    NEED_STR(rd_cstr(rd, &out->u.relation.relname));
    NEED(rd_u8(rd, &replident));
    out->u.relation.replident = (char)replident;
    NEED(rd_u16(rd, &ncols));
    if (ncols > PGOUT_MAX_COLS)
        return PGOUT_ETOOMANYCOLS;
    NEED((size_t)ncols <= rd_left(rd) / PGOUT_RELCOL_MIN);
    for (uint16_t i = 0; i < ncols; i++) {
        struct pgout_relcol *col = &out->relcol_storage[i];
        uint32_t typmod;

        NEED(rd_u8(rd, &col->flags));
        if ((col->flags & ~PGOUT_RELCOL_KEY) != 0)
            return PGOUT_EBADFLAGS;
        NEED_STR(rd_cstr(rd, &col->name));
        NEED(rd_u32(rd, &col->type_oid));
        NEED(rd_u32(rd, &typmod));
        col->typmod = (int32_t)typmod;
    }
    out->u.relation.ncols = ncols;
    out->u.relation.cols = out->relcol_storage;
    return PGOUT_OK;
}

/* Y: [xid] Int32 type OID, String nspname, String typname. */
static enum pgout_status decode_type(struct pgout_reader *rd, bool streamed, struct pgout_msg *out)
{
    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u32(rd, &out->u.type.type_oid));
    NEED_STR(rd_cstr(rd, &out->u.type.nspname));
    NEED_STR(rd_cstr(rd, &out->u.type.typname));
    return PGOUT_OK;
}

/* I: [xid] Int32 relid, Byte1 'N', TupleData. */
static enum pgout_status decode_insert(struct pgout_reader *rd, bool streamed,
                                       struct pgout_msg *out)
{
    uint8_t marker;

    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u32(rd, &out->u.insert.relid));
    NEED(rd_u8(rd, &marker));
    if (marker != 'N')
        return PGOUT_EBADTUPLE;
    return decode_tuple(rd, out->col_storage, &out->u.insert.newtup);
}

/* U: [xid] Int32 relid, optional ('K' | 'O', TupleData), Byte1 'N', TupleData. */
static enum pgout_status decode_update(struct pgout_reader *rd, bool streamed,
                                       struct pgout_msg *out)
{
    uint8_t marker;

    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u32(rd, &out->u.update.relid));
    NEED(rd_u8(rd, &marker));
    out->u.update.old_kind = 0;
    out->u.update.oldtup.ncols = 0;
    out->u.update.oldtup.cols = NULL;
    if (marker == 'K' || marker == 'O') {
        out->u.update.old_kind = (char)marker;
        TRY(decode_tuple(rd, out->col_storage, &out->u.update.oldtup));
        NEED(rd_u8(rd, &marker));
    }
    if (marker != 'N')
        return PGOUT_EBADTUPLE;
    return decode_tuple(rd, out->col_storage + PGOUT_MAX_COLS, &out->u.update.newtup);
}

/* D: [xid] Int32 relid, Byte1 'K' | 'O', TupleData. */
static enum pgout_status decode_delete(struct pgout_reader *rd, bool streamed,
                                       struct pgout_msg *out)
{
    uint8_t marker;

    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u32(rd, &out->u.del.relid));
    NEED(rd_u8(rd, &marker));
    if (marker != 'K' && marker != 'O')
        return PGOUT_EBADTUPLE;
    out->u.del.old_kind = (char)marker;
    return decode_tuple(rd, out->col_storage, &out->u.del.oldtup);
}

/* T: [xid] Int32 nrelids, Int8 flags, Int32 relid x nrelids. */
static enum pgout_status decode_truncate(struct pgout_reader *rd, bool streamed,
                                         struct pgout_msg *out)
{
    uint32_t nrelids;

    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u32(rd, &nrelids));
    NEED(rd_u8(rd, &out->u.truncate.flags));
    if ((out->u.truncate.flags & ~PGOUT_TRUNC_FLAGS) != 0)
        return PGOUT_EBADFLAGS;
    /* Check the count against what is left before touching the array. */
    NEED(nrelids <= rd_left(rd) / 4);
    NEED(rd_bytes(rd, (size_t)nrelids * 4, &out->u.truncate.relids));
    out->u.truncate.nrelids = nrelids;
    return PGOUT_OK;
}

/* M: [xid] Int8 flags, Int64 lsn, String prefix, Int32 len, Byte[len] content. */
static enum pgout_status decode_message(struct pgout_reader *rd, bool streamed,
                                        struct pgout_msg *out)
{
    NEED(rd_xid(rd, streamed, out));
    NEED(rd_u8(rd, &out->u.message.flags));
    if ((out->u.message.flags & ~PGOUT_MSG_TRANSACTIONAL) != 0)
        return PGOUT_EBADFLAGS;
    NEED(rd_u64(rd, &out->u.message.lsn));
    NEED_STR(rd_cstr(rd, &out->u.message.prefix));
    NEED(rd_u32(rd, &out->u.message.len));
    NEED(rd_bytes(rd, out->u.message.len, &out->u.message.content));
    return PGOUT_OK;
}

/* S (v2+): Int32 xid, Int8 first_segment (0 or 1). */
static enum pgout_status decode_stream_start(struct pgout_reader *rd, struct pgout_msg *out)
{
    NEED(rd_u32(rd, &out->u.stream_start.xid));
    NEED(rd_u8(rd, &out->u.stream_start.first_segment));
    if (out->u.stream_start.first_segment > 1)
        return PGOUT_EBADFLAGS;
    return PGOUT_OK;
}

/* c (v2+): Int32 xid, Int8 flags (0), Int64 commit_lsn, Int64 end_lsn, Int64 commit_time. */
static enum pgout_status decode_stream_commit(struct pgout_reader *rd, struct pgout_msg *out)
{
    NEED(rd_u32(rd, &out->u.stream_commit.xid));
    NEED(rd_u8(rd, &out->u.stream_commit.flags));
    if (out->u.stream_commit.flags != 0)
        return PGOUT_EBADFLAGS;
    NEED(rd_u64(rd, &out->u.stream_commit.commit_lsn));
    NEED(rd_u64(rd, &out->u.stream_commit.end_lsn));
    NEED(rd_i64(rd, &out->u.stream_commit.commit_time));
    return PGOUT_OK;
}

/*
 * A (v2+): Int32 xid, Int32 subxid. Proto 4 with streaming=parallel (PG16+)
 * appends Int64 abort_lsn and Int64 abort_time; they are consumed and dropped
 * because the relay never asks for parallel streaming.
 */
static enum pgout_status decode_stream_abort(struct pgout_reader *rd, int proto_version,
                                             struct pgout_msg *out)
{
    NEED(rd_u32(rd, &out->u.stream_abort.xid));
    NEED(rd_u32(rd, &out->u.stream_abort.subxid));
    if (proto_version >= 4 && rd_left(rd) > 0) {
        uint64_t abort_lsn;
        int64_t abort_time;

        NEED(rd_u64(rd, &abort_lsn));
        NEED(rd_i64(rd, &abort_time));
    }
    return PGOUT_OK;
}

static enum pgout_status decode_any(const uint8_t *buf, size_t len, int proto_version,
                                    bool streamed, struct pgout_msg *out)
{
    struct pgout_reader rd = {buf, len, 0};
    enum pgout_status st;
    uint8_t tag;

    if (proto_version < 1 || proto_version > 4 || (streamed && proto_version < 2))
        return PGOUT_EBADVERSION;
    NEED(rd_u8(&rd, &tag));
    out->tag = (char)tag;
    out->has_xid = false;
    out->xid = 0;
    switch (tag) {
    case PGOUT_MSG_BEGIN:
        st = decode_begin(&rd, out);
        break;
    case PGOUT_MSG_COMMIT:
        st = decode_commit(&rd, out);
        break;
    case PGOUT_MSG_ORIGIN:
        st = decode_origin(&rd, out);
        break;
    case PGOUT_MSG_RELATION:
        st = decode_relation(&rd, streamed, out);
        break;
    case PGOUT_MSG_TYPE:
        st = decode_type(&rd, streamed, out);
        break;
    case PGOUT_MSG_INSERT:
        st = decode_insert(&rd, streamed, out);
        break;
    case PGOUT_MSG_UPDATE:
        st = decode_update(&rd, streamed, out);
        break;
    case PGOUT_MSG_DELETE:
        st = decode_delete(&rd, streamed, out);
        break;
    case PGOUT_MSG_TRUNCATE:
        st = decode_truncate(&rd, streamed, out);
        break;
    case PGOUT_MSG_MESSAGE:
        st = decode_message(&rd, streamed, out);
        break;
    case PGOUT_MSG_STREAM_START:
        if (proto_version < 2)
            return PGOUT_EBADTAG;
        st = decode_stream_start(&rd, out);
        break;
    case PGOUT_MSG_STREAM_STOP:
        if (proto_version < 2)
            return PGOUT_EBADTAG;
        st = PGOUT_OK; /* no fields */
        break;
    case PGOUT_MSG_STREAM_COMMIT:
        if (proto_version < 2)
            return PGOUT_EBADTAG;
        st = decode_stream_commit(&rd, out);
        break;
    case PGOUT_MSG_STREAM_ABORT:
        if (proto_version < 2)
            return PGOUT_EBADTAG;
        st = decode_stream_abort(&rd, proto_version, out);
        break;
    default:
        return PGOUT_EBADTAG;
    }
    if (st != PGOUT_OK)
        return st;
    if (rd_left(&rd) != 0)
        return PGOUT_ETRAILING;
    return PGOUT_OK;
}

enum pgout_status pgout_decode(const uint8_t *buf, size_t len, int proto_version,
                               struct pgout_msg *out)
{
    return decode_any(buf, len, proto_version, false, out);
}

enum pgout_status pgout_decode_streamed(const uint8_t *buf, size_t len, int proto_version,
                                        struct pgout_msg *out)
{
    return decode_any(buf, len, proto_version, true, out);
}

uint32_t pgout_truncate_relid(const struct pgout_msg *msg, uint32_t i)
{
    if (msg->tag != PGOUT_MSG_TRUNCATE || i >= msg->u.truncate.nrelids)
        return 0;
    return be_get32(msg->u.truncate.relids + (size_t)i * 4);
}

const char *pgout_strerror(enum pgout_status status)
{
    switch (status) {
    case PGOUT_OK:
        return "success";
    case PGOUT_ETRUNC:
        return "truncated message";
    case PGOUT_EBADTAG:
        return "unknown message type";
    case PGOUT_EBADFLAGS:
        return "reserved flags not zero";
    case PGOUT_EBADTUPLE:
        return "unexpected tuple marker";
    case PGOUT_EBADKIND:
        return "unknown column kind";
    case PGOUT_ETOOMANYCOLS:
        return "too many columns";
    case PGOUT_ETRAILING:
        return "trailing bytes after message";
    case PGOUT_EBADSTRING:
        return "string without terminating nul";
    case PGOUT_EBADVERSION:
        return "unsupported protocol version";
    }
    return "unknown pgout status";
}
