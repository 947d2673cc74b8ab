/*
 * The relay's saved position (docs/protocol.md#r9): the commit end LSN of the last
 * fully delivered transaction, with the slot and the cluster it belongs to,
 * kept in a small text file replaced atomically (write, fsync, rename, fsync
 * the directory). Does not log.
 */
#ifndef ORDERS_CDC_STATE_H
#define ORDERS_CDC_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "compiler.h"

struct relay_state {
    char slot[128];
    char systemid[32];
    uint32_t timeline; /* 0: not recorded (a file from before timelines were) */
    uint64_t lsn;
};

/* Returns 1 and fills *st when the file exists and parses, 0 when it does not
 * exist, -1 (err filled) when it cannot be read or is malformed. */
int state_load(const char *path, struct relay_state *st, char *err, size_t errlen) MUSTCHECK;

/* Replaces the file with *st durably. Returns 0, or -1 with err filled. */
int state_save(const char *path, const struct relay_state *st, char *err, size_t errlen) MUSTCHECK;

#endif
