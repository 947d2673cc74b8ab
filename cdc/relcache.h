/*
 * Relation cache: the relay's copy of the schema each pgoutput Relation ('R')
 * message announces, keyed by relation OID and replaced on every new 'R'
 * (docs/protocol.md#stream-semantics). Owns its copies; no I/O, no logging.
 * Not thread-safe: one cache per replication connection.
 */
#ifndef ORDERS_CDC_RELCACHE_H
#define ORDERS_CDC_RELCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "pgout.h"

struct relcache;

/* One relation as last announced. All strings are NUL-terminated copies. */
struct relcache_rel {
    uint32_t relid;
    char *nspname; /* as sent: "" means pg_catalog */
    char *relname;
    char replident; /* relreplident: 'd', 'n', 'f' or 'i' */
    uint16_t ncols;
    char **colnames;   /* ncols names */
    uint32_t *typoids; /* ncols type OIDs */
};

/* @returns new, empty cache; free with relcache_free(). Never NULL (aborts on OOM). */
struct relcache *relcache_new(void);

/* Frees the cache and every entry it holds. relcache_free(NULL) does nothing. */
void relcache_free(struct relcache *rc);

/*
 * Copies the relation from a decoded 'R' message (relation_msg->tag must be
 * PGOUT_MSG_RELATION), replacing any entry with the same relid. The message
 * and the buffer it views are not retained.
 * @returns the stored entry, borrowed until the next relcache_put() for that
 * relid or relcache_free(); NULL if relation_msg is not an 'R' message.
 */
const struct relcache_rel *relcache_put(struct relcache *rc, const struct pgout_msg *relation_msg);

/* @returns the entry for relid, borrowed as for relcache_put(); NULL if unknown. */
const struct relcache_rel *relcache_get(const struct relcache *rc, uint32_t relid);

/* @returns the index of the column named name (exact, case-sensitive match), or -1. */
int relcache_column_index(const struct relcache_rel *rel, const char *name);

/* @returns the number of relations held. */
size_t relcache_count(const struct relcache *rc);

#endif
