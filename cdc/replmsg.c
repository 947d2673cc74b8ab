/*
 * Offsets as walsender.c writes them (WalSndPrepareWrite, WalSndKeepalive)
 * and ProcessStandbyReplyMessage reads the reply; pg_recvlogical.c does the
 * same on the client side.
 */
#include "replmsg.h"

#include <stdio.h>

#include "be.h"

enum replmsg_status replmsg_parse(const uint8_t *buf, size_t len, struct replmsg *out)
{
    if (len == 0)
        return REPLMSG_EUNKNOWN;
    switch (buf[0]) {
    case REPLMSG_XLOGDATA:
        if (len < REPLMSG_XLOGDATA_HDR_LEN)
            return REPLMSG_ESHORT;
        /* 'w', dataStart, walEnd (the same for logical decoding), sendTime */
        *out = (struct replmsg){
            .kind = REPLMSG_XLOGDATA,
            .wal_pos = be_get64(buf + 1),
            .send_time = (int64_t)be_get64(buf + 17),
            .data = buf + REPLMSG_XLOGDATA_HDR_LEN,
            .len = len - REPLMSG_XLOGDATA_HDR_LEN,
        };
        return REPLMSG_OK;
    case REPLMSG_KEEPALIVE:
        if (len < REPLMSG_KEEPALIVE_LEN)
            return REPLMSG_ESHORT;
        /* 'k', walEnd, sendTime, replyRequested */
        *out = (struct replmsg){
            .kind = REPLMSG_KEEPALIVE,
            .wal_pos = be_get64(buf + 1),
            .send_time = (int64_t)be_get64(buf + 9),
            .reply_requested = buf[17] != 0,
        };
        return REPLMSG_OK;
    default:
        return REPLMSG_EUNKNOWN;
    }
}

void replmsg_describe(enum replmsg_status st, const uint8_t *buf, size_t len, char *err,
                      size_t errlen)
{
    if (st == REPLMSG_ESHORT)
        snprintf(err, errlen, "protocol error: %s of %zu bytes",
                 buf[0] == REPLMSG_XLOGDATA ? "XLogData" : "keepalive", len);
    else if (len == 0)
        snprintf(err, errlen, "protocol error: empty CopyData message");
    else
        snprintf(err, errlen, "protocol error: unknown CopyData message '%c'", buf[0]);
}

void replmsg_status(uint8_t out[REPLMSG_STATUS_LEN], uint64_t write_lsn, uint64_t flush_lsn,
                    uint64_t apply_lsn, int64_t now_pg_us, bool reply_requested)
{
    out[0] = 'r';
    be_put64(out + 1, write_lsn);
    be_put64(out + 9, flush_lsn);
    be_put64(out + 17, apply_lsn);
    be_put64(out + 25, (uint64_t)now_pg_us);
    out[33] = reply_requested ? 1 : 0;
}
