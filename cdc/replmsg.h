/*
 * The CopyBoth envelope of a logical replication stream
 * (docs/protocol.md#the-copyboth-envelope): XLogData and primary keepalive
 * messages parsed into plain fields, and the standby status update written.
 * Pure functions over buffers; the only place that knows the wire offsets.
 */
#ifndef ORDERS_CDC_REPLMSG_H
#define ORDERS_CDC_REPLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

/* Wire sizes. */
#define REPLMSG_XLOGDATA_HDR_LEN (1 + 8 + 8 + 8)
#define REPLMSG_KEEPALIVE_LEN    (1 + 8 + 8 + 1)
#define REPLMSG_STATUS_LEN       (1 + 8 + 8 + 8 + 8 + 1)

enum replmsg_kind {
    REPLMSG_XLOGDATA = 'w',
    REPLMSG_KEEPALIVE = 'k',
};

struct replmsg {
    enum replmsg_kind kind;
    /* XLogData: dataStart (never a position to confirm, docs/protocol.md#r5);
     * keepalive: walEnd */
    uint64_t wal_pos;
    int64_t send_time;    /* the walsender's clock, µs since 2000-01-01 */
    bool reply_requested; /* keepalive: answer at once (R4) */
    const uint8_t *data;  /* XLogData: the pgoutput message, borrowed from the buffer */
    size_t len;
};

enum replmsg_status {
    REPLMSG_OK = 0,
    REPLMSG_ESHORT,   /* shorter than its header */
    REPLMSG_EUNKNOWN, /* neither 'w' nor 'k' (or empty) */
};

/* Parses one CopyData message. On REPLMSG_OK *out is filled and its data
 * points into buf. */
enum replmsg_status replmsg_parse(const uint8_t *buf, size_t len, struct replmsg *out) MUSTCHECK;

/* A one-line description of a refused message for the log ("protocol error:
 * XLogData of 7 bytes"), written into err. */
void replmsg_describe(enum replmsg_status st, const uint8_t *buf, size_t len, char *err,
                      size_t errlen);

/* Writes a standby status update ('r'): write, flush, apply, the client's
 * clock now_pg_us (µs since 2000-01-01) and whether the server should reply. */
void replmsg_status(uint8_t out[REPLMSG_STATUS_LEN], uint64_t write_lsn, uint64_t flush_lsn,
                    uint64_t apply_lsn, int64_t now_pg_us, bool reply_requested);

#endif
