/*
 * Relation cache: an open-addressing hash table (linear probing, power-of-two
 * size, at most half full) of heap-allocated relcache_rel entries keyed by
 * relation OID. Entries are never deleted, only replaced, so probing needs no
 * tombstones. Copies everything it keeps out of the decoded message.
 */
#include "relcache.h"

#include <stdlib.h>
#include <string.h>

#include "xmem.h"

#define RELCACHE_INITIAL_SLOTS 16

struct relcache {
    struct relcache_rel **slots; /* nslots entries, NULL = empty */
    size_t nslots;               /* power of two */
    size_t count;
};

/* murmur3's fmix32: OIDs are sequential, so spread them before masking. */
static size_t relid_hash(uint32_t relid)
{
    uint32_t h = relid;

    h ^= h >> 16;
    h *= 0x85ebca6bU;
    h ^= h >> 13;
    h *= 0xc2b2ae35U;
    h ^= h >> 16;
    return (size_t)h;
}

/* Slot holding relid, or the empty slot where it would go. */
static size_t find_slot(struct relcache_rel *const *slots, size_t nslots, uint32_t relid)
{
    size_t mask = nslots - 1;
    size_t i = relid_hash(relid) & mask;

    while (slots[i] != NULL && slots[i]->relid != relid)
        i = (i + 1) & mask;
    return i;
}

static void rel_free(struct relcache_rel *rel)
{
    if (rel == NULL)
        return;
    for (uint16_t i = 0; i < rel->ncols; i++)
        free(rel->colnames[i]);
    free(rel->colnames);
    free(rel->typoids);
    free(rel->nspname);
    free(rel->relname);
    free(rel);
}

static struct relcache_rel *rel_copy(const struct pgout_msg *msg)
{
    struct relcache_rel *rel = xcalloc(1, sizeof(*rel));
    uint16_t ncols = msg->u.relation.ncols;

    rel->relid = msg->u.relation.relid;
    rel->nspname = xstrndup(msg->u.relation.nspname.ptr, msg->u.relation.nspname.len);
    rel->relname = xstrndup(msg->u.relation.relname.ptr, msg->u.relation.relname.len);
    rel->replident = msg->u.relation.replident;
    rel->ncols = ncols;
    rel->colnames = xcalloc(ncols, sizeof(*rel->colnames));
    rel->typoids = xcalloc(ncols, sizeof(*rel->typoids));
    for (uint16_t i = 0; i < ncols; i++) {
        const struct pgout_relcol *col = &msg->u.relation.cols[i];

        rel->colnames[i] = xstrndup(col->name.ptr, col->name.len);
        rel->typoids[i] = col->type_oid;
    }
    return rel;
}

static void grow(struct relcache *rc)
{
    size_t nslots = rc->nslots * 2;
    /* An array of pointers, so sizeof a pointer is meant. */
    // NOLINTNEXTLINE(bugprone-sizeof-expression)
    struct relcache_rel **slots = xcalloc(nslots, sizeof(*slots));

    for (size_t i = 0; i < rc->nslots; i++) {
        if (rc->slots[i] != NULL)
            slots[find_slot(slots, nslots, rc->slots[i]->relid)] = rc->slots[i];
    }
    free(rc->slots);
    rc->slots = slots;
    rc->nslots = nslots;
}

struct relcache *relcache_new(void)
{
    struct relcache *rc = xcalloc(1, sizeof(*rc));

    rc->nslots = RELCACHE_INITIAL_SLOTS;
    // NOLINTNEXTLINE(bugprone-sizeof-expression)
    rc->slots = xcalloc(rc->nslots, sizeof(*rc->slots));
    return rc;
}

void relcache_free(struct relcache *rc)
{
    if (rc == NULL)
        return;
    for (size_t i = 0; i < rc->nslots; i++)
        rel_free(rc->slots[i]);
    free(rc->slots);
    free(rc);
}

const struct relcache_rel *relcache_put(struct relcache *rc, const struct pgout_msg *relation_msg)
{
    size_t i;

    if (relation_msg->tag != PGOUT_MSG_RELATION)
        return NULL;
    /* Keep the table at most half full so probe chains stay short. */
    if ((rc->count + 1) * 2 > rc->nslots)
        grow(rc);
    i = find_slot(rc->slots, rc->nslots, relation_msg->u.relation.relid);
    if (rc->slots[i] == NULL)
        rc->count++;
    else
        rel_free(rc->slots[i]);
    rc->slots[i] = rel_copy(relation_msg);
    return rc->slots[i];
}

const struct relcache_rel *relcache_get(const struct relcache *rc, uint32_t relid)
{
    return rc->slots[find_slot(rc->slots, rc->nslots, relid)];
}

int relcache_column_index(const struct relcache_rel *rel, const char *name)
{
    for (uint16_t i = 0; i < rel->ncols; i++) {
        if (strcmp(rel->colnames[i], name) == 0)
            return i;
    }
    return -1;
}

size_t relcache_count(const struct relcache *rc)
{
    return rc->count;
}
