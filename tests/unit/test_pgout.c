/*
 * pgoutput decoder against messages captured from real PostgreSQL 15, 16, 17
 * and 18 (tests/fixtures/pgoutput/pg<major>_<name>.hex, made by
 * tests/fixtures/capture_pgoutput.sh), every truncation of them, targeted
 * corruptions, and the test encoder. Each capture runs the same script, so
 * one check per kind of stream holds for every version; where a version
 * sends something else, the check says so.
 * Fixtures are read from $FIXTURES_DIR, else tests/fixtures (tests/support/fixture.c).
 */
#include <dirent.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/pgout.h"
#include "cdc/relcache.h"
#include "lsn.h"
#include "support/fixture.h"
#include "support/pgout_build.h"
#include "unit/check.h"

#define OUTBOX_ID(n) "00000000-0000-0000-0000-00000000000" #n

/* Stream Abort: Int32 xid, Int32 subxid, and with proto 4 and parallel
 * streaming Int64 abort_lsn, Int64 abort_time. */
#define STREAM_ABORT_LEN          9
#define STREAM_ABORT_PARALLEL_LEN 25

/* 2024-01-02 03:04:09 UTC in microseconds since 2000-01-01, set by
 * pg_replication_origin_xact_setup() in the capture script. */
#define ORIGIN_COMMIT_TIME 757479849000000LL

/* kitchen_sink.txt: "quote ' tab<TAB> ünïcode" in UTF-8. */
static const char unicode_text[] = "quote ' tab\t \xc3\xbc"
                                   "n\xc3\xaf"
                                   "code";

/* Both decoded messages are ~128 KB: keep them off the stack. */
static struct pgout_msg msg;
static struct pgout_msg msg2;

/* A loaded fixture and the protocol version it was captured with. */
struct fx {
    struct fixture_msg *msgs;
    size_t n;
    int proto;
};

static void fx_free(struct fx *fx)
{
    struct fixture f = {fx->msgs, fx->n};

    fixture_free(&f);
    fx->msgs = NULL;
    fx->n = 0;
}

/* Loads a fixture file; a missing or malformed fixture is a counted failure,
 * never a silent skip. */
static bool fx_load(const char *name, int proto, struct fx *fx)
{
    struct fixture f;
    bool ok = fixture_load(name, &f);

    CHECK(ok);
    fx->msgs = f.msgs;
    fx->n = f.n;
    fx->proto = proto;
    return ok;
}

static enum pgout_status fx_decode(const struct fx *fx, const uint8_t *buf, size_t len,
                                   bool streamed, struct pgout_msg *out)
{
    if (streamed)
        return pgout_decode_streamed(buf, len, fx->proto, out);
    return pgout_decode(buf, len, fx->proto, out);
}

static bool view_eq(struct pgout_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.ptr, want, s.len) == 0;
}

static bool col_is_text(const struct pgout_tuple *tup, uint16_t i, const char *want)
{
    return i < tup->ncols && tup->cols[i].kind == PGOUT_COL_TEXT &&
           tup->cols[i].len == strlen(want) && memcmp(tup->cols[i].data, want, strlen(want)) == 0;
}

#define CHECK_COL_TEXT(tup, i, s)                                                                  \
    do {                                                                                           \
        CHECK_EQ_INT((tup)->cols[i].kind, PGOUT_COL_TEXT);                                         \
        CHECK_VIEW((const char *)(tup)->cols[i].data, (tup)->cols[i].len, s);                      \
    } while (0)

/* Re-encodes a decoded message with the test encoder (views stay valid). */
static void reencode(const struct pgout_msg *m, struct pgout_build *b)
{
    static struct pgout_build_val oldv[PGOUT_MAX_COLS], newv[PGOUT_MAX_COLS];
    static struct pgout_build_relcol relcols[PGOUT_MAX_COLS];
    uint32_t xid = m->has_xid ? m->xid : 0;
    const struct pgout_tuple *oldtup = NULL, *newtup = NULL;
    uint32_t relids[64];

    switch (m->tag) {
    case PGOUT_MSG_INSERT:
        newtup = &m->u.insert.newtup;
        break;
    case PGOUT_MSG_UPDATE:
        oldtup = m->u.update.old_kind ? &m->u.update.oldtup : NULL;
        newtup = &m->u.update.newtup;
        break;
    case PGOUT_MSG_DELETE:
        oldtup = &m->u.del.oldtup;
        break;
    default:
        break;
    }
    for (uint16_t i = 0; oldtup != NULL && i < oldtup->ncols; i++) {
        oldv[i].kind = oldtup->cols[i].kind;
        oldv[i].data = oldtup->cols[i].data;
        oldv[i].len = oldtup->cols[i].len;
    }
    for (uint16_t i = 0; newtup != NULL && i < newtup->ncols; i++) {
        newv[i].kind = newtup->cols[i].kind;
        newv[i].data = newtup->cols[i].data;
        newv[i].len = newtup->cols[i].len;
    }

    switch (m->tag) {
    case PGOUT_MSG_BEGIN:
        pgout_build_begin(b, m->u.begin.final_lsn, m->u.begin.commit_time, m->u.begin.xid);
        break;
    case PGOUT_MSG_COMMIT:
        pgout_build_commit(b, m->u.commit.flags, m->u.commit.commit_lsn, m->u.commit.end_lsn,
                           m->u.commit.commit_time);
        break;
    case PGOUT_MSG_ORIGIN:
        /* The name view is followed by its wire NUL, so it is a C string. */
        pgout_build_origin(b, m->u.origin.commit_lsn, m->u.origin.name.ptr);
        break;
    case PGOUT_MSG_RELATION:
        for (uint16_t i = 0; i < m->u.relation.ncols; i++) {
            relcols[i].flags = m->u.relation.cols[i].flags;
            relcols[i].name = m->u.relation.cols[i].name.ptr;
            relcols[i].type_oid = m->u.relation.cols[i].type_oid;
            relcols[i].typmod = m->u.relation.cols[i].typmod;
        }
        pgout_build_relation(b, xid, m->u.relation.relid, m->u.relation.nspname.ptr,
                             m->u.relation.relname.ptr, m->u.relation.replident,
                             m->u.relation.ncols, relcols);
        break;
    case PGOUT_MSG_TYPE:
        pgout_build_type(b, xid, m->u.type.type_oid, m->u.type.nspname.ptr, m->u.type.typname.ptr);
        break;
    case PGOUT_MSG_INSERT:
        pgout_build_insert(b, xid, m->u.insert.relid, newtup->ncols, newv);
        break;
    case PGOUT_MSG_UPDATE:
        pgout_build_update(b, xid, m->u.update.relid, m->u.update.old_kind,
                           oldtup ? oldtup->ncols : 0, oldv, newtup->ncols, newv);
        break;
    case PGOUT_MSG_DELETE:
        pgout_build_delete(b, xid, m->u.del.relid, m->u.del.old_kind, oldtup->ncols, oldv);
        break;
    case PGOUT_MSG_TRUNCATE:
        for (uint32_t i = 0; i < m->u.truncate.nrelids && i < 64; i++)
            relids[i] = pgout_truncate_relid(m, i);
        pgout_build_truncate(b, xid, m->u.truncate.nrelids, m->u.truncate.flags, relids);
        break;
    case PGOUT_MSG_MESSAGE:
        pgout_build_message(b, xid, m->u.message.flags, m->u.message.lsn, m->u.message.prefix.ptr,
                            m->u.message.len, m->u.message.content);
        break;
    case PGOUT_MSG_STREAM_START:
        pgout_build_stream_start(b, m->u.stream_start.xid, m->u.stream_start.first_segment);
        break;
    case PGOUT_MSG_STREAM_STOP:
        pgout_build_stream_stop(b);
        break;
    case PGOUT_MSG_STREAM_COMMIT:
        pgout_build_stream_commit(b, m->u.stream_commit.xid, m->u.stream_commit.flags,
                                  m->u.stream_commit.commit_lsn, m->u.stream_commit.end_lsn,
                                  m->u.stream_commit.commit_time);
        break;
    case PGOUT_MSG_STREAM_ABORT:
        pgout_build_stream_abort(b, m->u.stream_abort.xid, m->u.stream_abort.subxid);
        break;
    default:
        break;
    }
}

static bool parallel_abort(const struct fx *fx, const struct fixture_msg *m)
{
    return fx->proto >= 4 && m->data[0] == PGOUT_MSG_STREAM_ABORT &&
           m->len == STREAM_ABORT_PARALLEL_LEN;
}

/*
 * Every fixture message decodes, re-encodes to the same bytes, fails on every
 * truncation and on one trailing byte.
 */
static void check_fixture_generic(const struct fx *fx)
{
    struct pgout_build b;
    size_t ok = 0, reenc = 0, trunc_ok = 0, trailing = 0;

    pgout_build_init(&b);
    for (size_t i = 0; i < fx->n; i++) {
        const struct fixture_msg *m = &fx->msgs[i];
        enum pgout_status st = fx_decode(fx, m->data, m->len, m->streamed, &msg);
        uint8_t *copy;

        if (st != PGOUT_OK) {
            fprintf(stderr, "fixture message %zu (tag %c): %s\n", i, m->data[0],
                    pgout_strerror(st));
            continue;
        }
        ok++;
        pgout_build_reset(&b);
        reencode(&msg, &b);
        /* The decoder drops a parallel Stream Abort's abort_lsn and
         * abort_time (the relay never asks for parallel streaming). */
        if (parallel_abort(fx, m))
            pgout_build_bytes(&b, m->data + STREAM_ABORT_LEN, m->len - STREAM_ABORT_LEN);
        if (b.len == m->len && memcmp(b.data, m->data, m->len) == 0)
            reenc++;
        else
            fprintf(stderr, "fixture message %zu (tag %c) re-encodes differently\n", i, m->data[0]);

        /* Exact-size copies, so ASan sees any read past the end. */
        for (size_t k = 0; k < m->len; k++) {
            copy = malloc(k ? k : 1);
            if (copy == NULL)
                abort();
            memcpy(copy, m->data, k);
            /* Cut after subxid, it is a Stream Abort without the parallel part. */
            if (parallel_abort(fx, m) && k == STREAM_ABORT_LEN) {
                CHECK_EQ_INT(fx_decode(fx, copy, k, m->streamed, &msg2), PGOUT_OK);
                free(copy);
                continue;
            }
            if (fx_decode(fx, copy, k, m->streamed, &msg2) == PGOUT_OK) {
                fprintf(stderr, "fixture message %zu cut to %zu bytes decoded OK\n", i, k);
                trunc_ok++;
            }
            free(copy);
        }

        copy = malloc(m->len + 1);
        if (copy == NULL)
            abort();
        memcpy(copy, m->data, m->len);
        copy[m->len] = 0x7f;
        if (fx_decode(fx, copy, m->len + 1, m->streamed, &msg2) == PGOUT_ETRAILING)
            trailing++;
        free(copy);
    }
    CHECK_EQ_INT(ok, fx->n);
    CHECK_EQ_INT(reenc, fx->n);
    CHECK_EQ_INT(trunc_ok, 0);
    CHECK_EQ_INT(trailing, fx->n);
    pgout_build_fini(&b);
}

static const struct fixture_msg *find_message(const struct fx *fx, const char *prefix,
                                              const char *content)
{
    for (size_t i = 0; i < fx->n; i++) {
        const struct fixture_msg *m = &fx->msgs[i];

        if (m->data[0] != PGOUT_MSG_MESSAGE ||
            fx_decode(fx, m->data, m->len, m->streamed, &msg) != PGOUT_OK)
            continue;
        if (view_eq(msg.u.message.prefix, prefix) && msg.u.message.len == strlen(content) &&
            memcmp(msg.u.message.content, content, msg.u.message.len) == 0)
            return m;
    }
    return NULL;
}

/* Index of the first change of relid whose column col has text want. */
static size_t find_change(const struct fx *fx, char tag, uint32_t relid, uint16_t col,
                          const char *want)
{
    for (size_t i = 0; i < fx->n; i++) {
        const struct fixture_msg *m = &fx->msgs[i];
        const struct pgout_tuple *tup;

        if (m->data[0] != (uint8_t)tag ||
            fx_decode(fx, m->data, m->len, m->streamed, &msg) != PGOUT_OK)
            continue;
        if (tag == PGOUT_MSG_INSERT && msg.u.insert.relid == relid)
            tup = &msg.u.insert.newtup;
        else if (tag == PGOUT_MSG_UPDATE && msg.u.update.relid == relid)
            tup = &msg.u.update.newtup;
        else if (tag == PGOUT_MSG_DELETE && msg.u.del.relid == relid)
            tup = &msg.u.del.oldtup;
        else
            continue;
        if (col_is_text(tup, col, want))
            return i;
    }
    return SIZE_MAX;
}

/* Decodes fixture message i into msg; false (counted) when absent. */
static bool decode_at(const struct fx *fx, size_t i)
{
    CHECK(i < fx->n);
    if (i >= fx->n)
        return false;
    return fx_decode(fx, fx->msgs[i].data, fx->msgs[i].len, fx->msgs[i].streamed, &msg) == PGOUT_OK;
}

/* Transaction framing and relation bookkeeping over the whole proto 1 stream. */
static void check_proto1_framing(const struct fx *fx, struct relcache *rc)
{
    bool in_txn = false;
    uint64_t final_lsn = 0;
    int64_t begin_time = 0;
    int begins = 0, commits = 0, unknown_rel = 0, width_mismatch = 0;

    for (size_t i = 0; i < fx->n; i++) {
        const struct fixture_msg *m = &fx->msgs[i];
        const struct relcache_rel *rel = NULL;
        uint32_t relid = 0;

        if (fx_decode(fx, m->data, m->len, false, &msg) != PGOUT_OK)
            continue;
        CHECK(!msg.has_xid);
        switch (msg.tag) {
        case PGOUT_MSG_BEGIN:
            CHECK(!in_txn);
            in_txn = true;
            begins++;
            final_lsn = msg.u.begin.final_lsn;
            begin_time = msg.u.begin.commit_time;
            CHECK(final_lsn != 0);
            CHECK(msg.u.begin.xid != 0);
            break;
        case PGOUT_MSG_COMMIT:
            CHECK(in_txn);
            in_txn = false;
            commits++;
            CHECK_EQ_INT(msg.u.commit.flags, 0);
            /* B.final_lsn is the start of the commit record, as C.commit_lsn. */
            CHECK_EQ_U64(msg.u.commit.commit_lsn, final_lsn);
            CHECK(msg.u.commit.end_lsn > msg.u.commit.commit_lsn);
            CHECK_EQ_INT(msg.u.commit.commit_time, begin_time);
            /* The commit is written at txn->end_lsn. */
            CHECK_EQ_U64(m->lsn, msg.u.commit.end_lsn);
            break;
        case PGOUT_MSG_RELATION:
            CHECK(in_txn);
            CHECK(relcache_put(rc, &msg) != NULL);
            break;
        case PGOUT_MSG_MESSAGE:
            /* Transactional messages only inside B..C, the others only outside. */
            CHECK_EQ_INT(msg.u.message.flags == 1, in_txn);
            /* The message LSN is its write position (end of the message record). */
            CHECK_EQ_U64(m->lsn, msg.u.message.lsn);
            break;
        case PGOUT_MSG_INSERT:
            relid = msg.u.insert.relid;
            rel = relcache_get(rc, relid);
            if (rel != NULL && rel->ncols != msg.u.insert.newtup.ncols)
                width_mismatch++;
            break;
        case PGOUT_MSG_UPDATE:
            relid = msg.u.update.relid;
            rel = relcache_get(rc, relid);
            if (rel != NULL && rel->ncols != msg.u.update.newtup.ncols)
                width_mismatch++;
            break;
        case PGOUT_MSG_DELETE:
            relid = msg.u.del.relid;
            rel = relcache_get(rc, relid);
            if (rel != NULL && rel->ncols != msg.u.del.oldtup.ncols)
                width_mismatch++;
            break;
        default:
            break;
        }
        if (relid != 0) {
            CHECK(in_txn);
            if (rel == NULL)
                unknown_rel++;
        }
    }
    CHECK(!in_txn);
    CHECK(begins > 5);
    CHECK_EQ_INT(begins, commits);
    CHECK_EQ_INT(unknown_rel, 0);
    CHECK_EQ_INT(width_mismatch, 0);
}

static void check_fixture_proto1(const char *file)
{
    struct fx fx;
    struct relcache *rc;
    const struct relcache_rel *outbox, *sink;
    uint32_t outbox_relid = 0, sink_relid = 0;
    const struct fixture_msg *m;
    size_t i;
    static const char *const outbox_cols[] = {"id",         "aggregate_type", "aggregate_id",
                                              "event_type", "payload",        "created_at"};
    static const uint32_t outbox_types[] = {2950, 25, 25, 25, 3802, 1184};

    if (!fx_load(file, 1, &fx))
        return;
    check_fixture_generic(&fx);

    /* The first messages: marker, then B R I C for the first outbox insert. */
    CHECK(decode_at(&fx, 0));
    CHECK_EQ_INT(msg.tag, PGOUT_MSG_MESSAGE);
    CHECK_VIEW(msg.u.message.prefix.ptr, msg.u.message.prefix.len, "capture.step");

    for (i = 0; i < fx.n; i++) {
        if (fx.msgs[i].data[0] == PGOUT_MSG_RELATION)
            break;
    }
    CHECK(decode_at(&fx, i));
    CHECK_EQ_INT(msg.tag, PGOUT_MSG_RELATION);
    CHECK_VIEW(msg.u.relation.nspname.ptr, msg.u.relation.nspname.len, "public");
    CHECK_VIEW(msg.u.relation.relname.ptr, msg.u.relation.relname.len, "outbox");
    CHECK_EQ_INT(msg.u.relation.replident, 'd');
    CHECK_EQ_INT(msg.u.relation.ncols, 6);
    for (uint16_t c = 0; c < 6 && c < msg.u.relation.ncols; c++) {
        CHECK_VIEW(msg.u.relation.cols[c].name.ptr, msg.u.relation.cols[c].name.len,
                   outbox_cols[c]);
        CHECK_EQ_INT(msg.u.relation.cols[c].type_oid, outbox_types[c]);
        CHECK_EQ_INT(msg.u.relation.cols[c].typmod, -1);
        CHECK_EQ_INT(msg.u.relation.cols[c].flags, c == 0 ? 1 : 0);
    }
    outbox_relid = msg.u.relation.relid;

    /* The outbox insert, column by column in text mode. */
    i = find_change(&fx, PGOUT_MSG_INSERT, outbox_relid, 0, OUTBOX_ID(1));
    if (decode_at(&fx, i)) {
        const struct pgout_tuple *t = &msg.u.insert.newtup;

        CHECK_EQ_INT(t->ncols, 6);
        CHECK_COL_TEXT(t, 0, OUTBOX_ID(1));
        CHECK_COL_TEXT(t, 1, "order");
        CHECK_COL_TEXT(t, 2, "42");
        CHECK_COL_TEXT(t, 3, "OrderCreated");
        /* jsonb's canonical text: keys sorted by length, then bytes. */
        CHECK_COL_TEXT(t, 4, "{\"items\": [\"a\"], \"total\": 12.5}");
        CHECK_COL_TEXT(t, 5, "2024-01-02 03:04:05+00");
        /* Preceded by its Begin. */
        CHECK(decode_at(&fx, i - 2));
        CHECK_EQ_INT(msg.tag, PGOUT_MSG_BEGIN);
    }

    /* NULL payload. */
    i = find_change(&fx, PGOUT_MSG_INSERT, outbox_relid, 0, OUTBOX_ID(2));
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.insert.newtup.cols[4].kind, PGOUT_COL_NULL);
        CHECK(msg.u.insert.newtup.cols[4].data == NULL);
    }

    /* Transactional message between the two inserts of one transaction. */
    m = find_message(&fx, "outbox", "tx-message");
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(fx_decode(&fx, m->data, m->len, false, &msg) == PGOUT_OK);
        CHECK_EQ_INT(msg.u.message.flags, 1);
        CHECK(m > fx.msgs && m[-1].data[0] == PGOUT_MSG_INSERT);
        CHECK(m[1].data[0] == PGOUT_MSG_INSERT);
    }

    /* Non-transactional messages: standalone, no Begin/Commit around them. */
    m = find_message(&fx, "heartbeat", "ping");
    CHECK(m != NULL);
    if (m != NULL) {
        CHECK(fx_decode(&fx, m->data, m->len, false, &msg) == PGOUT_OK);
        CHECK_EQ_INT(msg.u.message.flags, 0);
        CHECK(m[-1].data[0] == PGOUT_MSG_MESSAGE && m[1].data[0] == PGOUT_MSG_MESSAGE);
    }
    for (i = 0; i < fx.n; i++) {
        if (fx.msgs[i].data[0] == PGOUT_MSG_MESSAGE && decode_at(&fx, i) &&
            view_eq(msg.u.message.prefix, "bin"))
            break;
    }
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.message.len, 3);
        CHECK(memcmp(msg.u.message.content, "\x00\xff\x10", 3) == 0);
    }

    /* Rolled back: the non-transactional message still arrives, nothing else. */
    CHECK(find_message(&fx, "rollback", "sent-anyway") != NULL);
    CHECK(find_message(&fx, "rollback", "never-sent") == NULL);
    CHECK_EQ_U64(find_change(&fx, PGOUT_MSG_INSERT, outbox_relid, 0, OUTBOX_ID(99)), SIZE_MAX);

    /* The enum type is announced with 'Y' before the kitchen_sink relation. */
    for (i = 0; i < fx.n; i++) {
        if (fx.msgs[i].data[0] == PGOUT_MSG_TYPE)
            break;
    }
    if (decode_at(&fx, i)) {
        uint32_t mood_oid = msg.u.type.type_oid;

        CHECK_VIEW(msg.u.type.nspname.ptr, msg.u.type.nspname.len, "public");
        CHECK_VIEW(msg.u.type.typname.ptr, msg.u.type.typname.len, "mood");
        CHECK(decode_at(&fx, i + 1));
        CHECK_EQ_INT(msg.tag, PGOUT_MSG_RELATION);
        CHECK_VIEW(msg.u.relation.relname.ptr, msg.u.relation.relname.len, "kitchen_sink");
        CHECK_EQ_INT(msg.u.relation.replident, 'f');
        CHECK_EQ_INT(msg.u.relation.ncols, 20);
        for (uint16_t c = 0; c < msg.u.relation.ncols; c++)
            CHECK_EQ_INT(msg.u.relation.cols[c].flags, 1); /* FULL: every column is key */
        CHECK_EQ_INT(msg.u.relation.cols[4].typmod, (10 << 16 | 2) + 4); /* numeric(10,2) */
        CHECK_EQ_INT(msg.u.relation.cols[7].typmod, 20 + 4);             /* varchar(20) */
        CHECK_EQ_INT(msg.u.relation.cols[18].type_oid, mood_oid);
        sink_relid = msg.u.relation.relid;
    }

    i = find_change(&fx, PGOUT_MSG_INSERT, sink_relid, 0, "1");
    if (decode_at(&fx, i)) {
        const struct pgout_tuple *t = &msg.u.insert.newtup;

        CHECK_EQ_INT(t->ncols, 20);
        CHECK_COL_TEXT(t, 1, "-2");
        CHECK_COL_TEXT(t, 4, "12.34");
        CHECK_COL_TEXT(t, 6, unicode_text);
        CHECK_COL_TEXT(t, 8, "ab "); /* char(3) pads */
        CHECK_COL_TEXT(t, 9, "\\xdeadbeef");
        CHECK_COL_TEXT(t, 13, "1 day 02:00:00");
        CHECK_COL_TEXT(t, 16, "{1,2,NULL}");
        CHECK_COL_TEXT(t, 18, "happy");
        CHECK_EQ_INT(t->cols[19].kind, PGOUT_COL_TEXT);
        CHECK_EQ_INT(t->cols[19].len, 6400);
    }

    /* REPLICA IDENTITY FULL update leaving the TOASTed column alone: the old
     * row carries the full value, the new row marks it 'u'. */
    i = find_change(&fx, PGOUT_MSG_UPDATE, sink_relid, 2, "4");
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.update.old_kind, 'O');
        CHECK_EQ_INT(msg.u.update.oldtup.ncols, 20);
        CHECK_COL_TEXT(&msg.u.update.oldtup, 2, "3");
        CHECK_EQ_INT(msg.u.update.oldtup.cols[19].len, 6400);
        CHECK_EQ_INT(msg.u.update.newtup.cols[19].kind, PGOUT_COL_UNCHANGED);
        CHECK(msg.u.update.newtup.cols[19].data == NULL);
        CHECK_EQ_INT(msg.u.update.newtup.cols[19].len, 0);
    }

    /* Default identity, TOASTed payload unchanged: no old tuple, 'u'. */
    i = find_change(&fx, PGOUT_MSG_UPDATE, outbox_relid, 3, "OrderShipped");
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.update.old_kind, 0);
        CHECK_EQ_INT(msg.u.update.oldtup.ncols, 0);
        CHECK_COL_TEXT(&msg.u.update.newtup, 0, OUTBOX_ID(4));
        CHECK_EQ_INT(msg.u.update.newtup.cols[4].kind, PGOUT_COL_UNCHANGED);
    }

    /* Primary key change: old key 'K' with only the key column set. */
    i = find_change(&fx, PGOUT_MSG_UPDATE, outbox_relid, 0, OUTBOX_ID(5));
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.update.old_kind, 'K');
        CHECK_EQ_INT(msg.u.update.oldtup.ncols, 6);
        CHECK_COL_TEXT(&msg.u.update.oldtup, 0, OUTBOX_ID(1));
        for (uint16_t c = 1; c < 6; c++)
            CHECK_EQ_INT(msg.u.update.oldtup.cols[c].kind, PGOUT_COL_NULL);
        CHECK_COL_TEXT(&msg.u.update.newtup, 3, "OrderCreated");
    }

    /* Deletes: 'K' for the default identity, 'O' for FULL. */
    i = find_change(&fx, PGOUT_MSG_DELETE, outbox_relid, 0, OUTBOX_ID(5));
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.del.old_kind, 'K');
        CHECK_EQ_INT(msg.u.del.oldtup.cols[1].kind, PGOUT_COL_NULL);
    }
    i = find_change(&fx, PGOUT_MSG_DELETE, sink_relid, 0, "1");
    if (decode_at(&fx, i)) {
        CHECK_EQ_INT(msg.u.del.old_kind, 'O');
        CHECK_COL_TEXT(&msg.u.del.oldtup, 2, "4");
        CHECK_EQ_INT(msg.u.del.oldtup.cols[19].len, 6400); /* detoasted */
    }

    /* Origin: B, O, I, C with the origin's LSN and commit time. */
    i = find_change(&fx, PGOUT_MSG_INSERT, outbox_relid, 3, "Replicated");
    if (decode_at(&fx, i - 1)) {
        CHECK_EQ_INT(msg.tag, PGOUT_MSG_ORIGIN);
        CHECK_EQ_U64(msg.u.origin.commit_lsn, 0xABCDEF);
        CHECK_VIEW(msg.u.origin.name.ptr, msg.u.origin.name.len, "upstream");
        CHECK(decode_at(&fx, i - 2));
        CHECK_EQ_INT(msg.tag, PGOUT_MSG_BEGIN);
        CHECK_EQ_INT(msg.u.begin.commit_time, ORIGIN_COMMIT_TIME);
    }

    /* Truncates: both tables in one message, then CASCADE | RESTART IDENTITY. */
    {
        int ntrunc = 0;

        for (i = 0; i < fx.n; i++) {
            if (fx.msgs[i].data[0] != PGOUT_MSG_TRUNCATE || !decode_at(&fx, i))
                continue;
            if (ntrunc == 0) {
                CHECK_EQ_INT(msg.u.truncate.nrelids, 2);
                CHECK_EQ_INT(msg.u.truncate.flags, 0);
                CHECK_EQ_INT(pgout_truncate_relid(&msg, 0), outbox_relid);
                CHECK_EQ_INT(pgout_truncate_relid(&msg, 1), sink_relid);
                CHECK_EQ_INT(pgout_truncate_relid(&msg, 2), 0); /* out of range */
            } else {
                CHECK_EQ_INT(msg.u.truncate.nrelids, 1);
                CHECK_EQ_INT(msg.u.truncate.flags, 3);
                CHECK_EQ_INT(pgout_truncate_relid(&msg, 0), outbox_relid);
            }
            ntrunc++;
        }
        CHECK_EQ_INT(ntrunc, 2);
    }

    /* Framing, then the relcache holds the last schema of each relation. */
    rc = relcache_new();
    check_proto1_framing(&fx, rc);
    CHECK_EQ_INT(relcache_count(rc), 2);
    outbox = relcache_get(rc, outbox_relid);
    sink = relcache_get(rc, sink_relid);
    CHECK(outbox != NULL && sink != NULL);
    if (outbox != NULL && sink != NULL) {
        CHECK_STR(outbox->nspname, "public");
        CHECK_STR(outbox->relname, "outbox");
        CHECK_EQ_INT(outbox->ncols, 7);
        CHECK_EQ_INT(relcache_column_index(outbox, "trace_id"), 6);
        CHECK_EQ_INT(relcache_column_index(outbox, "payload"), 4);
        CHECK_EQ_INT(outbox->typoids[4], 3802);
        CHECK_EQ_INT(sink->ncols, 19);
        CHECK_EQ_INT(relcache_column_index(sink, "vc"), -1); /* dropped */
        CHECK_EQ_INT(relcache_column_index(sink, "big"), 18);
        CHECK_EQ_INT(sink->replident, 'f');
    }
    relcache_free(rc);
    fx_free(&fx);
}

static void check_fixture_binary(const char *file)
{
    struct fx fx;
    size_t i;
    uint32_t sink_relid = 0;

    if (!fx_load(file, 1, &fx))
        return;
    check_fixture_generic(&fx);
    for (i = 0; i < fx.n; i++) {
        if (fx.msgs[i].data[0] == PGOUT_MSG_RELATION && decode_at(&fx, i) &&
            view_eq(msg.u.relation.relname, "kitchen_sink")) {
            sink_relid = msg.u.relation.relid;
            break;
        }
    }
    CHECK(sink_relid != 0);
    for (i = 0; i < fx.n; i++) {
        if (fx.msgs[i].data[0] == PGOUT_MSG_INSERT && decode_at(&fx, i) &&
            msg.u.insert.relid == sink_relid)
            break;
    }
    if (decode_at(&fx, i)) {
        const struct pgout_col *c = msg.u.insert.newtup.cols;

        for (uint16_t k = 0; k < msg.u.insert.newtup.ncols; k++)
            CHECK_EQ_INT(c[k].kind, PGOUT_COL_BINARY);
        CHECK_EQ_INT(c[0].len, 8); /* int8send */
        CHECK(memcmp(c[0].data, "\0\0\0\0\0\0\0\1", 8) == 0);
        CHECK_EQ_INT(c[1].len, 2); /* int2send: -2 */
        CHECK(memcmp(c[1].data, "\xff\xfe", 2) == 0);
        CHECK_EQ_INT(c[9].len, 4); /* bytea raw bytes */
        CHECK(memcmp(c[9].data, "\xde\xad\xbe\xef", 4) == 0);
        CHECK_EQ_INT(c[15].data[0], 1); /* jsonb binary version byte */
    }
    fx_free(&fx);
}

/*
 * The capture streams two big transactions: one committed with a rolled-back
 * savepoint, one rolled back. PostgreSQL 18 no longer decodes a transaction
 * it already knows to be aborted when it reaches logical_decoding_work_mem
 * ("Skip logical decoding of already-aborted transactions"), so its capture,
 * made after the rollback, has the first transaction only: txns 1, else 2.
 */
static void check_fixture_stream(const char *file, int proto, int txns)
{
    struct fx fx;
    int starts = 0, stops = 0, commits = 0, aborts = 0, with_xid = 0, first_segments = 0;
    int parallel_aborts = 0;
    uint32_t top_xid = 0;
    uint64_t commit_lsn = 0, abort_lsn = 0;
    int64_t commit_time = 0, abort_time = 0;
    bool in_stream = false;

    if (!fx_load(file, proto, &fx))
        return;
    check_fixture_generic(&fx);
    for (size_t i = 0; i < fx.n; i++) {
        const struct fixture_msg *m = &fx.msgs[i];

        if (!decode_at(&fx, i))
            continue;
        switch (msg.tag) {
        case PGOUT_MSG_STREAM_START:
            CHECK(!in_stream);
            in_stream = true;
            starts++;
            CHECK(msg.u.stream_start.first_segment <= 1);
            if (msg.u.stream_start.first_segment == 1) {
                first_segments++;
                top_xid = msg.u.stream_start.xid;
            }
            CHECK_EQ_INT(msg.u.stream_start.xid, top_xid);
            break;
        case PGOUT_MSG_STREAM_STOP:
            CHECK(in_stream);
            in_stream = false;
            stops++;
            break;
        case PGOUT_MSG_STREAM_COMMIT:
            CHECK(!in_stream);
            commits++;
            CHECK_EQ_INT(msg.u.stream_commit.xid, top_xid);
            CHECK(msg.u.stream_commit.end_lsn > msg.u.stream_commit.commit_lsn);
            CHECK_EQ_U64(m->lsn, msg.u.stream_commit.end_lsn);
            commit_lsn = msg.u.stream_commit.commit_lsn;
            commit_time = msg.u.stream_commit.commit_time;
            break;
        case PGOUT_MSG_STREAM_ABORT:
            CHECK(!in_stream);
            aborts++;
            CHECK_EQ_INT(msg.u.stream_abort.xid, top_xid);
            /* First the rolled-back savepoint (a subxact), last the whole txn. */
            if (aborts == 1)
                CHECK(msg.u.stream_abort.subxid != top_xid);
            else
                CHECK_EQ_INT(msg.u.stream_abort.subxid, top_xid);
            /* Proto 4 with parallel streaming: every abort carries its LSN
             * and time; the others never do. */
            CHECK_EQ_INT(m->len, proto >= 4 ? STREAM_ABORT_PARALLEL_LEN : STREAM_ABORT_LEN);
            if (parallel_abort(&fx, m) && parallel_aborts++ == 0) {
                uint64_t t = 0;

                for (int k = 0; k < 8; k++) {
                    abort_lsn = abort_lsn << 8 | m->data[STREAM_ABORT_LEN + k];
                    t = t << 8 | m->data[STREAM_ABORT_LEN + 8 + k];
                }
                abort_time = (int64_t)t;
            }
            break;
        case PGOUT_MSG_RELATION:
        case PGOUT_MSG_INSERT:
            CHECK(in_stream);
            CHECK(msg.has_xid);
            /* The change's own (sub)transaction xid, at or above the top xid. */
            CHECK(msg.xid >= top_xid);
            with_xid++;
            break;
        default:
            CHECK(false);
            break;
        }
    }
    CHECK_EQ_INT(starts, stops);
    CHECK(starts >= 2 * txns);
    CHECK_EQ_INT(first_segments, txns);
    CHECK_EQ_INT(commits, 1);
    CHECK_EQ_INT(aborts, txns);
    CHECK(with_xid > 500 * txns);
    CHECK_EQ_INT(parallel_aborts, proto >= 4 ? aborts : 0);
    if (proto >= 4) {
        /* The savepoint was rolled back before its transaction committed. */
        CHECK(abort_lsn > 0 && abort_lsn < commit_lsn);
        CHECK(abort_time > 0 && abort_time <= commit_time);
    }

    /* The same bytes are wrong for proto 1 and in the other framing. */
    for (size_t i = 0; i < fx.n; i++) {
        const struct fixture_msg *m = &fx.msgs[i];

        if (m->data[0] == PGOUT_MSG_STREAM_START) {
            CHECK_EQ_INT(pgout_decode(m->data, m->len, 1, &msg), PGOUT_EBADTAG);
            CHECK_EQ_INT(pgout_decode(m->data, m->len, 2, &msg), PGOUT_OK);
        } else if (m->streamed && m->data[0] == PGOUT_MSG_INSERT) {
            /* Without the xid the relid would be read as the xid... and the
             * marker from the relid's first byte. */
            CHECK_EQ_INT(pgout_decode(m->data, m->len, 2, &msg), PGOUT_EBADTUPLE);
            CHECK_EQ_INT(pgout_decode_streamed(m->data, m->len, 1, &msg), PGOUT_EBADVERSION);
            break;
        }
    }
    fx_free(&fx);
}

/* One test per captured stream, so a failure names the version. */
static void test_fixture_proto1(void)
{
    check_fixture_proto1("pgoutput/pg15_proto1.hex");
}

static void test_fixture_proto1_pg16(void)
{
    check_fixture_proto1("pgoutput/pg16_proto1.hex");
}

static void test_fixture_proto1_pg17(void)
{
    check_fixture_proto1("pgoutput/pg17_proto1.hex");
}

static void test_fixture_proto1_pg18(void)
{
    check_fixture_proto1("pgoutput/pg18_proto1.hex");
}

static void test_fixture_binary(void)
{
    check_fixture_binary("pgoutput/pg15_proto1_binary.hex");
}

static void test_fixture_binary_pg16(void)
{
    check_fixture_binary("pgoutput/pg16_proto1_binary.hex");
}

static void test_fixture_binary_pg17(void)
{
    check_fixture_binary("pgoutput/pg17_proto1_binary.hex");
}

static void test_fixture_binary_pg18(void)
{
    check_fixture_binary("pgoutput/pg18_proto1_binary.hex");
}

static void test_fixture_stream(void)
{
    check_fixture_stream("pgoutput/pg15_proto2_stream.hex", 2, 2);
}

static void test_fixture_stream_pg16(void)
{
    check_fixture_stream("pgoutput/pg16_proto2_stream.hex", 2, 2);
}

static void test_fixture_stream_pg17(void)
{
    check_fixture_stream("pgoutput/pg17_proto2_stream.hex", 2, 2);
}

static void test_fixture_stream_pg18(void)
{
    check_fixture_stream("pgoutput/pg18_proto2_stream.hex", 2, 1);
}

static void test_fixture_stream_parallel_pg16(void)
{
    check_fixture_stream("pgoutput/pg16_proto4_stream_parallel.hex", 4, 2);
}

static void test_fixture_stream_parallel_pg17(void)
{
    check_fixture_stream("pgoutput/pg17_proto4_stream_parallel.hex", 4, 2);
}

static void test_fixture_stream_parallel_pg18(void)
{
    check_fixture_stream("pgoutput/pg18_proto4_stream_parallel.hex", 4, 1);
}

/* A small valid message of the given tag, built into b (offsets below rely on it). */
static void build_sample(struct pgout_build *b, char tag)
{
    struct pgout_build_val vals[3] = {pgout_build_text("a"), pgout_build_null(),
                                      pgout_build_text("ccc")};
    struct pgout_build_relcol cols[2] = {{1, "id", 23, -1}, {0, "name", 25, -1}};

    pgout_build_reset(b);
    switch (tag) {
    case 'C':
        pgout_build_commit(b, 0, 0x10, 0x20, 5);
        break;
    case 'R':
        pgout_build_relation(b, 0, 16384, "public", "t", 'd', 2, cols);
        break;
    case 'I':
        pgout_build_insert(b, 0, 16384, 3, vals);
        break;
    case 'U':
        pgout_build_update(b, 0, 16384, 'K', 3, vals, 3, vals);
        break;
    case 'D':
        pgout_build_delete(b, 0, 16384, 'O', 3, vals);
        break;
    case 'M':
        pgout_build_message(b, 0, 1, 0x30, "pfx", 4, "body");
        break;
    default:
        break;
    }
}

static enum pgout_status decode_b(const struct pgout_build *b, int proto)
{
    return pgout_decode(b->data, b->len, proto, &msg);
}

static void test_corruptions(void)
{
    struct pgout_build b;
    struct pgout_build_val many[PGOUT_MAX_COLS + 1];
    static struct pgout_build_relcol relcols[PGOUT_MAX_COLS + 1];
    uint32_t relids[3] = {1, 2, 3};

    pgout_build_init(&b);

    /* Tags. */
    build_sample(&b, 'I');
    b.data[0] = 'Z';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTAG);
    b.data[0] = 0;
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTAG);
    for (const char *t = "ScEA"; *t; t++) {
        pgout_build_reset(&b);
        pgout_build_u8(&b, (uint8_t)*t);
        CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTAG);
    }
    /* Two-phase messages (proto 3) are not decoded. */
    for (const char *t = "bPKrp"; *t; t++) {
        pgout_build_reset(&b);
        pgout_build_u8(&b, (uint8_t)*t);
        pgout_build_u64(&b, 1);
        CHECK_EQ_INT(decode_b(&b, 3), PGOUT_EBADTAG);
    }
    CHECK_EQ_INT(pgout_decode(NULL, 0, 1, &msg), PGOUT_ETRUNC);

    /* Versions. */
    build_sample(&b, 'I');
    CHECK_EQ_INT(decode_b(&b, 0), PGOUT_EBADVERSION);
    CHECK_EQ_INT(decode_b(&b, 5), PGOUT_EBADVERSION);
    CHECK_EQ_INT(decode_b(&b, -1), PGOUT_EBADVERSION);
    for (int v = 1; v <= 4; v++)
        CHECK_EQ_INT(decode_b(&b, v), PGOUT_OK);
    CHECK_EQ_INT(pgout_decode_streamed(b.data, b.len, 1, &msg), PGOUT_EBADVERSION);
    CHECK_EQ_INT(pgout_decode_streamed(b.data, b.len, 5, &msg), PGOUT_EBADVERSION);

    /* Flags. */
    build_sample(&b, 'C');
    b.data[1] = 1;
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADFLAGS);
    pgout_build_reset(&b);
    pgout_build_stream_commit(&b, 7, 1, 1, 2, 3);
    CHECK_EQ_INT(decode_b(&b, 2), PGOUT_EBADFLAGS);
    pgout_build_reset(&b);
    pgout_build_message(&b, 0, 2, 1, "p", 0, "");
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADFLAGS);
    pgout_build_reset(&b);
    pgout_build_truncate(&b, 0, 1, 4, relids);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADFLAGS);
    pgout_build_reset(&b);
    pgout_build_stream_start(&b, 7, 2);
    CHECK_EQ_INT(decode_b(&b, 2), PGOUT_EBADFLAGS);
    build_sample(&b, 'R');
    b.data[1 + 4 + 7 + 2 + 1 + 2] = 3; /* first column's flags */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADFLAGS);

    /* Tuple markers. */
    build_sample(&b, 'I');
    b.data[5] = 'K';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTUPLE);
    build_sample(&b, 'U');
    b.data[5] = 'X';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTUPLE);
    build_sample(&b, 'U');
    b.data[5] = 'N'; /* 'N' first, then a tuple, then a stray 'N' and tuple */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRAILING);
    pgout_build_reset(&b);
    {
        struct pgout_build_val v = pgout_build_text("x");

        pgout_build_update(&b, 0, 1, 'K', 1, &v, 1, &v);
        /* Old tuple then 'K' again instead of 'N'. */
        b.data[1 + 4 + 1 + 2 + 1 + 4 + 1] = 'K';
        CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTUPLE);
    }
    build_sample(&b, 'D');
    b.data[5] = 'N';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADTUPLE);

    /* Column kinds. */
    build_sample(&b, 'I');
    b.data[8] = 'x';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADKIND);
    build_sample(&b, 'I');
    b.data[8] = 'T';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADKIND);

    /* Column counts. */
    for (int i = 0; i <= PGOUT_MAX_COLS; i++)
        many[i] = pgout_build_null();
    pgout_build_reset(&b);
    pgout_build_insert(&b, 0, 1, PGOUT_MAX_COLS, many);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    CHECK_EQ_INT(msg.u.insert.newtup.ncols, PGOUT_MAX_COLS);
    pgout_build_reset(&b);
    pgout_build_insert(&b, 0, 1, PGOUT_MAX_COLS + 1, many);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETOOMANYCOLS);
    build_sample(&b, 'I');
    b.data[6] = 0xff; /* ncols 0xff03 */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETOOMANYCOLS);
    b.data[6] = 0x03; /* ncols 0x303 = 771: allowed, but more than the bytes left */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    pgout_build_reset(&b);
    pgout_build_update(&b, 0, 1, 'O', PGOUT_MAX_COLS, many, PGOUT_MAX_COLS, many);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    CHECK_EQ_INT(msg.u.update.oldtup.ncols, PGOUT_MAX_COLS);
    CHECK_EQ_INT(msg.u.update.newtup.ncols, PGOUT_MAX_COLS);
    CHECK(msg.u.update.oldtup.cols + PGOUT_MAX_COLS <= msg.u.update.newtup.cols);
    for (int i = 0; i <= PGOUT_MAX_COLS; i++) {
        relcols[i].flags = 0;
        relcols[i].name = "c";
        relcols[i].type_oid = 25;
        relcols[i].typmod = -1;
    }
    pgout_build_reset(&b);
    pgout_build_relation(&b, 0, 1, "s", "t", 'd', PGOUT_MAX_COLS, relcols);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    pgout_build_reset(&b);
    pgout_build_relation(&b, 0, 1, "s", "t", 'd', PGOUT_MAX_COLS + 1, relcols);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETOOMANYCOLS);
    pgout_build_reset(&b);
    pgout_build_relation(&b, 0, 1, "s", "t", 'd', 2, relcols);
    b.data[1 + 4 + 2 + 2 + 1] = 0x07; /* ncols 0x702 = 1794 */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETOOMANYCOLS);
    b.data[1 + 4 + 2 + 2 + 1] = 0x01; /* 258 columns in 22 bytes */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);

    /* Huge lengths. */
    build_sample(&b, 'I');
    memcpy(b.data + 9, "\xff\xff\xff\xff", 4); /* first column's length */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    memcpy(b.data + 9, "\x7f\xff\xff\xff", 4);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    build_sample(&b, 'M');
    memcpy(b.data + b.len - 8, "\xff\xff\xff\xff", 4); /* content length */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    pgout_build_reset(&b);
    pgout_build_truncate(&b, 0, 3, 0, relids);
    memcpy(b.data + 1, "\xff\xff\xff\xff", 4); /* nrelids */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    memcpy(b.data + 1, "\x40\x00\x00\x03", 4); /* nrelids * 4 wraps to 12 in 32 bits */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    memcpy(b.data + 1, "\x00\x00\x00\x04", 4);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRUNC);
    memcpy(b.data + 1, "\x00\x00\x00\x02", 4);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRAILING);
    pgout_build_reset(&b);
    pgout_build_truncate(&b, 0, 0, 0, relids);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    CHECK_EQ_INT(msg.u.truncate.nrelids, 0);

    /* Strings without their NUL. */
    build_sample(&b, 'R');
    b.len = 1 + 4 + 7 + 1; /* cut inside the relation name */
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADSTRING);
    pgout_build_reset(&b);
    pgout_build_origin(&b, 1, "name");
    b.len--;
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADSTRING);
    pgout_build_reset(&b);
    pgout_build_u8(&b, 'M');
    pgout_build_u8(&b, 0);
    pgout_build_u64(&b, 1);
    pgout_build_bytes(&b, "prefix", 6);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADSTRING);
    pgout_build_reset(&b);
    pgout_build_type(&b, 0, 1, "public", "mood");
    b.data[b.len - 1] = 'x';
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_EBADSTRING);

    /* Trailing bytes. */
    for (const char *t = "CRIUDM"; *t; t++) {
        build_sample(&b, *t);
        CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
        pgout_build_u8(&b, 0);
        CHECK_EQ_INT(decode_b(&b, 1), PGOUT_ETRAILING);
    }
    pgout_build_reset(&b);
    pgout_build_stream_stop(&b);
    CHECK_EQ_INT(decode_b(&b, 2), PGOUT_OK);
    pgout_build_u8(&b, 0);
    CHECK_EQ_INT(decode_b(&b, 2), PGOUT_ETRAILING);

    /* Stream Abort: proto 4 may append abort_lsn and abort_time (parallel). */
    pgout_build_reset(&b);
    pgout_build_stream_abort(&b, 7, 8);
    CHECK_EQ_INT(decode_b(&b, 4), PGOUT_OK);
    pgout_build_u64(&b, 0x1234);
    CHECK_EQ_INT(decode_b(&b, 4), PGOUT_ETRUNC);
    pgout_build_u64(&b, 99);
    CHECK_EQ_INT(decode_b(&b, 4), PGOUT_OK);
    CHECK_EQ_INT(msg.u.stream_abort.subxid, 8);
    CHECK_EQ_INT(decode_b(&b, 2), PGOUT_ETRAILING);
    pgout_build_u8(&b, 0);
    CHECK_EQ_INT(decode_b(&b, 4), PGOUT_ETRAILING);

    pgout_build_fini(&b);
}

/* Every message type through the encoder and back, plain and streamed. */
static void test_round_trip(void)
{
    struct pgout_build b;
    const uint8_t bin[3] = {0, 1, 2};
    struct pgout_build_val vals[4] = {pgout_build_text("42"), pgout_build_null(),
                                      pgout_build_unchanged(), pgout_build_binary(bin, 3)};
    struct pgout_build_relcol cols[2] = {{1, "id", 23, -1}, {0, "price", 1700, 655366}};
    uint32_t relids[2] = {16384, 0xFFFFFFFFu};

    pgout_build_init(&b);

    pgout_build_begin(&b, 0x16B374D848ULL, -5, 4000000000u);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    CHECK_EQ_INT(msg.tag, 'B');
    CHECK_EQ_U64(msg.u.begin.final_lsn, 0x16B374D848ULL);
    CHECK_EQ_INT(msg.u.begin.commit_time, -5);
    CHECK_EQ_U64(msg.u.begin.xid, 4000000000u);
    CHECK(!msg.has_xid);

    pgout_build_reset(&b);
    pgout_build_commit(&b, 0, 1, UINT64_MAX, INT64_MIN);
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    CHECK_EQ_U64(msg.u.commit.commit_lsn, 1);
    CHECK_EQ_U64(msg.u.commit.end_lsn, UINT64_MAX);
    CHECK(msg.u.commit.commit_time == INT64_MIN);

    pgout_build_reset(&b);
    pgout_build_origin(&b, 77, "");
    CHECK_EQ_INT(decode_b(&b, 1), PGOUT_OK);
    CHECK_EQ_U64(msg.u.origin.commit_lsn, 77);
    CHECK_EQ_INT(msg.u.origin.name.len, 0);

    for (int streamed = 0; streamed <= 1; streamed++) {
        uint32_t xid = streamed ? 991 : 0;
        enum pgout_status (*dec)(const uint8_t *, size_t, int, struct pgout_msg *) =
            streamed ? pgout_decode_streamed : pgout_decode;

        pgout_build_reset(&b);
        pgout_build_relation(&b, xid, 16384, "", "orders", 'i', 2, cols);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.has_xid, streamed);
        CHECK_EQ_INT(msg.xid, xid);
        CHECK_EQ_INT(msg.u.relation.relid, 16384);
        CHECK_EQ_INT(msg.u.relation.nspname.len, 0);
        CHECK_VIEW(msg.u.relation.relname.ptr, msg.u.relation.relname.len, "orders");
        CHECK_EQ_INT(msg.u.relation.replident, 'i');
        CHECK_EQ_INT(msg.u.relation.cols[1].typmod, 655366);
        CHECK_VIEW(msg.u.relation.cols[1].name.ptr, msg.u.relation.cols[1].name.len, "price");

        pgout_build_reset(&b);
        pgout_build_type(&b, xid, 70000, "app", "money2");
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.xid, xid);
        CHECK_EQ_INT(msg.u.type.type_oid, 70000);
        CHECK_VIEW(msg.u.type.typname.ptr, msg.u.type.typname.len, "money2");

        pgout_build_reset(&b);
        pgout_build_insert(&b, xid, 5, 4, vals);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.xid, xid);
        CHECK_EQ_INT(msg.u.insert.newtup.ncols, 4);
        CHECK_COL_TEXT(&msg.u.insert.newtup, 0, "42");
        CHECK_EQ_INT(msg.u.insert.newtup.cols[1].kind, 'n');
        CHECK_EQ_INT(msg.u.insert.newtup.cols[2].kind, 'u');
        CHECK_EQ_INT(msg.u.insert.newtup.cols[3].kind, 'b');
        CHECK_EQ_INT(msg.u.insert.newtup.cols[3].len, 3);
        CHECK(memcmp(msg.u.insert.newtup.cols[3].data, bin, 3) == 0);

        pgout_build_reset(&b);
        pgout_build_update(&b, xid, 5, 'O', 2, vals, 4, vals);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.u.update.old_kind, 'O');
        CHECK_EQ_INT(msg.u.update.oldtup.ncols, 2);
        CHECK_EQ_INT(msg.u.update.newtup.ncols, 4);
        CHECK_COL_TEXT(&msg.u.update.oldtup, 0, "42");
        CHECK_EQ_INT(msg.u.update.newtup.cols[3].kind, 'b');

        pgout_build_reset(&b);
        pgout_build_update(&b, xid, 5, 0, 0, NULL, 1, vals);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.u.update.old_kind, 0);
        CHECK_EQ_INT(msg.u.update.newtup.ncols, 1);

        pgout_build_reset(&b);
        pgout_build_delete(&b, xid, 5, 'K', 1, vals);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.u.del.old_kind, 'K');
        CHECK_EQ_INT(msg.u.del.relid, 5);

        pgout_build_reset(&b);
        pgout_build_truncate(&b, xid, 2, 3, relids);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.u.truncate.nrelids, 2);
        CHECK_EQ_INT(msg.u.truncate.flags, 3);
        CHECK_EQ_U64(pgout_truncate_relid(&msg, 1), 0xFFFFFFFFu);

        pgout_build_reset(&b);
        pgout_build_message(&b, xid, 1, 0xAB, "p", 3, "a\0b");
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK_EQ_INT(msg.xid, xid);
        CHECK_EQ_U64(msg.u.message.lsn, 0xAB);
        CHECK_EQ_INT(msg.u.message.len, 3);
        CHECK(memcmp(msg.u.message.content, "a\0b", 3) == 0);

        /* Stream control messages carry their xid in the body, not as has_xid. */
        pgout_build_reset(&b);
        pgout_build_stream_start(&b, 12, 1);
        CHECK_EQ_INT(dec(b.data, b.len, 2, &msg), PGOUT_OK);
        CHECK(!msg.has_xid);
        CHECK_EQ_INT(msg.u.stream_start.xid, 12);
        CHECK_EQ_INT(msg.u.stream_start.first_segment, 1);
    }

    pgout_build_reset(&b);
    pgout_build_stream_commit(&b, 12, 0, 100, 200, 300);
    CHECK_EQ_INT(decode_b(&b, 3), PGOUT_OK);
    CHECK_EQ_INT(msg.u.stream_commit.xid, 12);
    CHECK_EQ_U64(msg.u.stream_commit.commit_lsn, 100);
    CHECK_EQ_U64(msg.u.stream_commit.end_lsn, 200);
    CHECK_EQ_INT(msg.u.stream_commit.commit_time, 300);

    pgout_build_reset(&b);
    pgout_build_stream_abort(&b, 12, 13);
    CHECK_EQ_INT(decode_b(&b, 2), PGOUT_OK);
    CHECK_EQ_INT(msg.u.stream_abort.xid, 12);
    CHECK_EQ_INT(msg.u.stream_abort.subxid, 13);

    pgout_build_fini(&b);
}

/* "etrunc-foo.bin" -> PGOUT_ETRUNC; -1 when the name has no known prefix. */
static int status_from_name(const char *name)
{
    static const char *const names[] = {"ok-",           "etrunc-",    "ebadtag-",
                                        "ebadflags-",    "ebadtuple-", "ebadkind-",
                                        "etoomanycols-", "etrailing-", "ebadstring-"};

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strncmp(name, names[i], strlen(names[i])) == 0)
            return (int)i; /* same order as enum pgout_status */
    }
    return -1;
}

/*
 * Regression inputs (fuzz finds and hand-made overflow cases) in
 * pgoutput/regress/<status>-<what>.bin: raw bytes of one message and the
 * status pgout_decode() must return for proto_version 2. Every entry point
 * and version must also survive it.
 */
static void test_regressions(void)
{
    char dirpath[1024], path[2048];
    struct dirent *de;
    int nfiles = 0;
    DIR *dir;

    snprintf(dirpath, sizeof(dirpath), "%s/pgoutput/regress", fixture_dir());
    dir = opendir(dirpath);
    CHECK(dir != NULL);
    if (dir == NULL) {
        fprintf(stderr, "cannot open %s\n", dirpath);
        return;
    }
    while ((de = readdir(dir)) != NULL) {
        int want = status_from_name(de->d_name);
        uint8_t *buf;
        long len;
        FILE *f;

        if (de->d_name[0] == '.')
            continue;
        nfiles++;
        CHECK(want >= 0);
        snprintf(path, sizeof(path), "%s/%s", dirpath, de->d_name);
        f = fopen(path, "rb");
        CHECK(f != NULL);
        if (f == NULL)
            continue;
        len = fseek(f, 0, SEEK_END) == 0 ? ftell(f) : -1;
        CHECK(len >= 0 && fseek(f, 0, SEEK_SET) == 0);
        if (len < 0) {
            fclose(f);
            continue;
        }
        /* Exact size, so ASan sees a read one past the end. */
        buf = malloc(len > 0 ? (size_t)len : 1);
        if (buf == NULL)
            abort();
        CHECK(fread(buf, 1, (size_t)len, f) == (size_t)len);
        fclose(f);
        if ((int)pgout_decode(buf, (size_t)len, 2, &msg) != want)
            fprintf(stderr, "regression %s: got %s\n", de->d_name,
                    pgout_strerror(pgout_decode(buf, (size_t)len, 2, &msg)));
        CHECK_EQ_INT(pgout_decode(buf, (size_t)len, 2, &msg), want);
        for (int proto = 1; proto <= 4; proto++) {
            (void)pgout_decode(buf, (size_t)len, proto, &msg);
            (void)pgout_decode_streamed(buf, (size_t)len, proto, &msg);
        }
        free(buf);
    }
    closedir(dir);
    CHECK(nfiles >= 5);
}

static void test_strerror(void)
{
    for (int a = PGOUT_OK; a <= PGOUT_EBADVERSION; a++) {
        const char *sa = pgout_strerror((enum pgout_status)a);

        CHECK(sa != NULL && sa[0] != '\0');
        for (int c = a + 1; c <= PGOUT_EBADVERSION; c++)
            CHECK(strcmp(sa, pgout_strerror((enum pgout_status)c)) != 0);
    }
    CHECK_STR(pgout_strerror(PGOUT_ETRUNC), "truncated message");
    CHECK_STR(pgout_strerror((enum pgout_status)99), "unknown pgout status");
}

int main(void)
{
    RUN(test_fixture_proto1);
    RUN(test_fixture_proto1_pg16);
    RUN(test_fixture_proto1_pg17);
    RUN(test_fixture_proto1_pg18);
    RUN(test_fixture_binary);
    RUN(test_fixture_binary_pg16);
    RUN(test_fixture_binary_pg17);
    RUN(test_fixture_binary_pg18);
    RUN(test_fixture_stream);
    RUN(test_fixture_stream_pg16);
    RUN(test_fixture_stream_pg17);
    RUN(test_fixture_stream_pg18);
    RUN(test_fixture_stream_parallel_pg16);
    RUN(test_fixture_stream_parallel_pg17);
    RUN(test_fixture_stream_parallel_pg18);
    RUN(test_corruptions);
    RUN(test_round_trip);
    RUN(test_regressions);
    RUN(test_strerror);
    return check_summary();
}
