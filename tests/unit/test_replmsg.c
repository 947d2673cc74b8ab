/*
 * The CopyBoth envelope (cdc/replmsg.c, docs/protocol.md#the-copyboth-envelope):
 * XLogData and keepalive fields at their offsets, every truncation refused,
 * unknown types refused, the standby status update's bytes.
 */
#include "be.h"
#include "cdc/replmsg.h"
#include "unit/check.h"

static void test_xlogdata(void)
{
    uint8_t buf[REPLMSG_XLOGDATA_HDR_LEN + 3] = {'w'};
    struct replmsg m;

    be_put64(buf + 1, UINT64_C(0x153C120));        /* dataStart */
    be_put64(buf + 9, UINT64_C(0x153C120));        /* walEnd */
    be_put64(buf + 17, UINT64_C(757479849000000)); /* sendTime */
    buf[25] = 'B';
    buf[26] = 1;
    buf[27] = 2;
    CHECK_EQ_INT(replmsg_parse(buf, sizeof(buf), &m), REPLMSG_OK);
    CHECK_EQ_INT(m.kind, REPLMSG_XLOGDATA);
    CHECK_EQ_U64(m.wal_pos, 0x153C120);
    CHECK_EQ_INT(m.send_time, 757479849000000);
    CHECK(m.data == buf + 25);
    CHECK_EQ_INT(m.len, 3);
    CHECK(!m.reply_requested);
    /* a header with no message is still an envelope; the decoder refuses it */
    CHECK_EQ_INT(replmsg_parse(buf, REPLMSG_XLOGDATA_HDR_LEN, &m), REPLMSG_OK);
    CHECK_EQ_INT(m.len, 0);
    for (size_t n = 1; n < REPLMSG_XLOGDATA_HDR_LEN; n++)
        CHECK_EQ_INT(replmsg_parse(buf, n, &m), REPLMSG_ESHORT);
}

static void test_keepalive(void)
{
    uint8_t buf[REPLMSG_KEEPALIVE_LEN] = {'k'};
    struct replmsg m;

    be_put64(buf + 1, UINT64_C(0x1546DA8));
    be_put64(buf + 9, 42);
    buf[17] = 1;
    CHECK_EQ_INT(replmsg_parse(buf, sizeof(buf), &m), REPLMSG_OK);
    CHECK_EQ_INT(m.kind, REPLMSG_KEEPALIVE);
    CHECK_EQ_U64(m.wal_pos, 0x1546DA8);
    CHECK_EQ_INT(m.send_time, 42);
    CHECK(m.reply_requested);
    buf[17] = 0;
    CHECK_EQ_INT(replmsg_parse(buf, sizeof(buf), &m), REPLMSG_OK);
    CHECK(!m.reply_requested);
    for (size_t n = 1; n < REPLMSG_KEEPALIVE_LEN; n++)
        CHECK_EQ_INT(replmsg_parse(buf, n, &m), REPLMSG_ESHORT);
}

static void test_refused(void)
{
    const uint8_t other[] = {'r', 0, 0, 0};
    uint8_t short_w[7] = {'w'};
    struct replmsg m;
    char err[128];

    CHECK_EQ_INT(replmsg_parse(other, sizeof(other), &m), REPLMSG_EUNKNOWN);
    CHECK_EQ_INT(replmsg_parse(other, 0, &m), REPLMSG_EUNKNOWN);
    replmsg_describe(REPLMSG_EUNKNOWN, other, sizeof(other), err, sizeof(err));
    CHECK_STR(err, "protocol error: unknown CopyData message 'r'");
    replmsg_describe(REPLMSG_ESHORT, short_w, sizeof(short_w), err, sizeof(err));
    CHECK_STR(err, "protocol error: XLogData of 7 bytes");
    short_w[0] = 'k';
    replmsg_describe(REPLMSG_ESHORT, short_w, 5, err, sizeof(err));
    CHECK_STR(err, "protocol error: keepalive of 5 bytes");
}

static void test_status_update(void)
{
    uint8_t out[REPLMSG_STATUS_LEN];

    replmsg_status(out, 0x300, 0x200, 0x100, 77, true);
    CHECK_EQ_INT(out[0], 'r');
    CHECK_EQ_U64(be_get64(out + 1), 0x300);
    CHECK_EQ_U64(be_get64(out + 9), 0x200);
    CHECK_EQ_U64(be_get64(out + 17), 0x100);
    CHECK_EQ_U64(be_get64(out + 25), 77);
    CHECK_EQ_INT(out[33], 1);
    replmsg_status(out, 0, 0, 0, -1, false);
    CHECK_EQ_U64(be_get64(out + 25), UINT64_MAX); /* a clock before 2000 stays two's complement */
    CHECK_EQ_INT(out[33], 0);
}

int main(void)
{
    RUN(test_xlogdata);
    RUN(test_keepalive);
    RUN(test_refused);
    RUN(test_status_update);
    return check_summary();
}
