/* fuzz-sources: cdc/pgout.c cdc/replmsg.c */
/* fuzz-fixtures: tests/fixtures/pgoutput */
/*
 * libFuzzer target for the pgoutput decoder: every input, under every
 * proto_version and both entry points, must end in PGOUT_OK or an error code,
 * never a crash or UB, and a decoded message's views must lie inside the input.
 * The same input also goes through the CopyData envelope parser
 * (cdc/replmsg.c), whose payload view must lie inside it too.
 * Build: clang -g -fsanitize=fuzzer,address,undefined -I. -Icommon \
 *            tests/fuzz/fuzz_pgout.c cdc/pgout.c cdc/replmsg.c
 * Replay without libFuzzer: add -DWITH_MAIN (no -fsanitize=fuzzer) and pass files.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/pgout.h"
#include "cdc/replmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t *fuzz_data;
static size_t fuzz_size;
static volatile unsigned fuzz_sink;

/* Aborts unless [p, p + len) lies inside the input; reads it so ASan checks. */
static void in_input(const void *p, size_t len)
{
    const uint8_t *b = p;

    if (len == 0)
        return;
    if (b == NULL || b < fuzz_data || len > fuzz_size || b > fuzz_data + (fuzz_size - len))
        abort();
    fuzz_sink += b[0] + b[len - 1];
}

static void check_str(struct pgout_str s)
{
    in_input(s.ptr, s.len + 1); /* the wire NUL follows the view */
    if (memchr(s.ptr, '\0', s.len) != NULL || s.ptr[s.len] != '\0')
        abort();
}

static void check_tuple(const struct pgout_msg *msg, const struct pgout_tuple *tup)
{
    if (tup->ncols > PGOUT_MAX_COLS)
        abort();
    if (tup->ncols > 0 && (tup->cols < msg->col_storage ||
                           tup->cols + tup->ncols > msg->col_storage + 2 * PGOUT_MAX_COLS))
        abort();
    for (uint16_t i = 0; i < tup->ncols; i++) {
        const struct pgout_col *c = &tup->cols[i];

        switch (c->kind) {
        case PGOUT_COL_NULL:
        case PGOUT_COL_UNCHANGED:
            if (c->data != NULL || c->len != 0)
                abort();
            break;
        case PGOUT_COL_TEXT:
        case PGOUT_COL_BINARY:
            in_input(c->data, c->len);
            break;
        default:
            abort();
        }
    }
}

/* The invariants callers rely on after PGOUT_OK. */
static void check_msg(const struct pgout_msg *msg, const uint8_t *data, size_t size)
{
    if (size == 0 || msg->tag != (char)data[0])
        abort();
    switch (msg->tag) {
    case PGOUT_MSG_COMMIT:
        if (msg->u.commit.flags != 0)
            abort();
        break;
    case PGOUT_MSG_ORIGIN:
        check_str(msg->u.origin.name);
        break;
    case PGOUT_MSG_RELATION:
        if (msg->u.relation.ncols > PGOUT_MAX_COLS)
            abort();
        check_str(msg->u.relation.nspname);
        check_str(msg->u.relation.relname);
        for (uint16_t i = 0; i < msg->u.relation.ncols; i++) {
            if (msg->u.relation.cols[i].flags > 1)
                abort();
            check_str(msg->u.relation.cols[i].name);
        }
        break;
    case PGOUT_MSG_TYPE:
        check_str(msg->u.type.nspname);
        check_str(msg->u.type.typname);
        break;
    case PGOUT_MSG_INSERT:
        check_tuple(msg, &msg->u.insert.newtup);
        break;
    case PGOUT_MSG_UPDATE:
        if (msg->u.update.old_kind != 0)
            check_tuple(msg, &msg->u.update.oldtup);
        check_tuple(msg, &msg->u.update.newtup);
        break;
    case PGOUT_MSG_DELETE:
        if (msg->u.del.old_kind != 'K' && msg->u.del.old_kind != 'O')
            abort();
        check_tuple(msg, &msg->u.del.oldtup);
        break;
    case PGOUT_MSG_TRUNCATE:
        in_input(msg->u.truncate.relids, (size_t)msg->u.truncate.nrelids * 4);
        for (uint32_t i = 0; i < msg->u.truncate.nrelids; i++)
            fuzz_sink += pgout_truncate_relid(msg, i);
        break;
    case PGOUT_MSG_MESSAGE:
        check_str(msg->u.message.prefix);
        in_input(msg->u.message.content, msg->u.message.len);
        break;
    default:
        break;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct pgout_msg msg;
    enum pgout_status st;
    struct replmsg rm;

    fuzz_data = data;
    fuzz_size = size;
    if (replmsg_parse(data, size, &rm) == REPLMSG_OK) {
        if (rm.kind == REPLMSG_XLOGDATA)
            in_input(rm.data, rm.len);
        else if (rm.kind != REPLMSG_KEEPALIVE || rm.data != NULL)
            abort();
    }
    for (int proto = 0; proto <= 5; proto++) {
        st = pgout_decode(data, size, proto, &msg);
        if (pgout_strerror(st) == NULL)
            abort();
        if ((proto < 1 || proto > 4) != (st == PGOUT_EBADVERSION))
            abort();
        if (st == PGOUT_OK) {
            if (msg.has_xid)
                abort();
            check_msg(&msg, data, size);
        }

        st = pgout_decode_streamed(data, size, proto, &msg);
        if ((proto < 2 || proto > 4) != (st == PGOUT_EBADVERSION))
            abort();
        if (st == PGOUT_OK)
            check_msg(&msg, data, size);
    }
    return 0;
}

#ifdef WITH_MAIN
#include "replay_main.h"
#endif
