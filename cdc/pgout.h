/*
 * pgoutput decoder: turns the payload of one XLogData message into a struct.
 * Pure and deterministic: no I/O, no allocation, no globals, no logging.
 * Every read is bounds-checked; any input ends in PGOUT_OK or an error code.
 * Field order follows PostgreSQL's proto.c (logicalrep_write_*).
 */
#ifndef ORDERS_CDC_PGOUT_H
#define ORDERS_CDC_PGOUT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* PostgreSQL's MaxTupleAttributeNumber is 1664, MaxHeapAttributeNumber 1600. */
#define PGOUT_MAX_COLS 1600

enum pgout_status {
    PGOUT_OK = 0,
    PGOUT_ETRUNC,       /* message ends before a field it announces */
    PGOUT_EBADTAG,      /* unknown message type, or one not valid for proto_version */
    PGOUT_EBADFLAGS,    /* reserved flags field not zero */
    PGOUT_EBADTUPLE,    /* tuple marker other than 'N', 'K', 'O' where one is expected */
    PGOUT_EBADKIND,     /* column kind other than 'n', 'u', 't', 'b' */
    PGOUT_ETOOMANYCOLS, /* column count above PGOUT_MAX_COLS */
    PGOUT_ETRAILING,    /* bytes left after the last field */
    PGOUT_EBADSTRING,   /* string without its terminating NUL */
    PGOUT_EBADVERSION,  /* proto_version outside 1..4 */
};

/* Returns a static, lower-case description ("truncated message", ...). */
const char *pgout_strerror(enum pgout_status status);

/* A view into the decoded buffer; valid while that buffer is. Not NUL-terminated. */
struct pgout_str {
    const char *ptr;
    size_t len;
};

enum pgout_col_kind {
    PGOUT_COL_NULL = 'n',
    PGOUT_COL_UNCHANGED = 'u', /* unchanged TOASTed value, no data */
    PGOUT_COL_TEXT = 't',
    PGOUT_COL_BINARY = 'b',
};

struct pgout_col {
    char kind;           /* enum pgout_col_kind */
    const uint8_t *data; /* view, NULL for 'n' and 'u' */
    uint32_t len;
};

struct pgout_tuple {
    uint16_t ncols;
    struct pgout_col *cols; /* points into pgout_msg's storage */
};

struct pgout_relcol {
    uint8_t flags; /* 1 = part of the replica identity key */
    struct pgout_str name;
    uint32_t type_oid;
    int32_t typmod;
};

enum pgout_tag {
    PGOUT_MSG_BEGIN = 'B',
    PGOUT_MSG_COMMIT = 'C',
    PGOUT_MSG_ORIGIN = 'O',
    PGOUT_MSG_RELATION = 'R',
    PGOUT_MSG_TYPE = 'Y',
    PGOUT_MSG_INSERT = 'I',
    PGOUT_MSG_UPDATE = 'U',
    PGOUT_MSG_DELETE = 'D',
    PGOUT_MSG_TRUNCATE = 'T',
    PGOUT_MSG_MESSAGE = 'M',
    PGOUT_MSG_STREAM_START = 'S',  /* proto >= 2 */
    PGOUT_MSG_STREAM_STOP = 'E',   /* proto >= 2 */
    PGOUT_MSG_STREAM_COMMIT = 'c', /* proto >= 2 */
    PGOUT_MSG_STREAM_ABORT = 'A',  /* proto >= 2 */
};

struct pgout_msg {
    char tag; /* enum pgout_tag */
    /* Set only for changes inside a streamed block (proto >= 2, between S and E). */
    bool has_xid;
    uint32_t xid;
    union {
        struct {
            uint64_t final_lsn;  /* start of the commit record */
            int64_t commit_time; /* microseconds since 2000-01-01 UTC */
            uint32_t xid;
        } begin;
        struct {
            uint8_t flags;
            uint64_t commit_lsn; /* start of the commit record */
            uint64_t end_lsn;    /* end of the commit record: the position to confirm */
            int64_t commit_time;
        } commit;
        struct {
            uint64_t commit_lsn;
            struct pgout_str name;
        } origin;
        struct {
            uint32_t relid;
            struct pgout_str nspname; /* "" means pg_catalog */
            struct pgout_str relname;
            char replident;
            uint16_t ncols;
            struct pgout_relcol *cols; /* points into relcol_storage */
        } relation;
        struct {
            uint32_t type_oid;
            struct pgout_str nspname;
            struct pgout_str typname;
        } type;
        struct {
            uint32_t relid;
            struct pgout_tuple newtup;
        } insert;
        struct {
            uint32_t relid;
            char old_kind; /* 'K', 'O', or 0 when no old tuple was sent */
            struct pgout_tuple oldtup;
            struct pgout_tuple newtup;
        } update;
        struct {
            uint32_t relid;
            char old_kind; /* 'K' or 'O' */
            struct pgout_tuple oldtup;
        } del;
        struct {
            uint32_t nrelids;
            uint8_t flags;         /* 1 CASCADE, 2 RESTART IDENTITY */
            const uint8_t *relids; /* nrelids big-endian Int32; use pgout_truncate_relid() */
        } truncate;
        struct {
            uint8_t flags; /* 1 = transactional */
            uint64_t lsn;
            struct pgout_str prefix;
            uint32_t len;
            const uint8_t *content;
        } message;
        struct {
            uint32_t xid;
            uint8_t first_segment;
        } stream_start;
        struct {
            uint32_t xid;
            uint8_t flags;
            uint64_t commit_lsn;
            uint64_t end_lsn;
            int64_t commit_time;
        } stream_commit;
        struct {
            uint32_t xid;
            uint32_t subxid;
        } stream_abort;
    } u;
    /* Backing storage for the views above; callers never touch it directly. */
    struct pgout_col col_storage[2 * PGOUT_MAX_COLS];
    struct pgout_relcol relcol_storage[PGOUT_MAX_COLS];
};

/*
 * Decodes one pgoutput message (the XLogData payload, tag byte first).
 * proto_version is what START_REPLICATION asked for (1..4); stream tags are
 * accepted only for >= 2. On PGOUT_OK, *out holds views into buf that stay
 * valid while buf does. On error, *out is unspecified.
 */
enum pgout_status pgout_decode(const uint8_t *buf, size_t len, int proto_version,
                               struct pgout_msg *out);

/*
 * Same as pgout_decode() for a message received inside a streamed block
 * (between Stream Start 'S' and Stream Stop 'E'). There the changes R, Y, I,
 * U, D, T and M carry a leading Int32 xid, which this function requires and
 * returns in out->xid with out->has_xid set; every other tag (O, E, ...) is
 * decoded exactly as pgout_decode() does and has_xid stays false. The decoder
 * is stateless: the caller tracks S/E and picks the entry point.
 * @returns PGOUT_EBADVERSION unless 2 <= proto_version <= 4, otherwise as
 * pgout_decode(). Pure like pgout_decode(): no allocation, I/O or logging;
 * thread-safe.
 */
enum pgout_status pgout_decode_streamed(const uint8_t *buf, size_t len, int proto_version,
                                        struct pgout_msg *out);

/* The i-th relation id of a Truncate message; i < nrelids. */
uint32_t pgout_truncate_relid(const struct pgout_msg *msg, uint32_t i);

#endif
