/*
 * The server starts a logical stream at max(requested, confirmed_flush) and
 * creates a new slot at its own consistent point, both without a word: every
 * check below turns such a silent skip into a refusal (docs/protocol.md#r9).
 */
#include "resume.h"

#include <string.h>

/* The state file's checks; RESUME_OK with plan->start moved to the saved
 * position when it is usable. */
static enum resume_reason from_state(const struct resume_first *in, const struct resume_slot *slot,
                                     struct resume_plan *plan)
{
    const struct relay_state *st = in->state;

    if (st == NULL) {
        if (in->state_file && !slot->created)
            plan->note = RESUME_NOTE_NO_STATE_YET;
        return RESUME_OK;
    }
    if (strcmp(st->slot, in->slot) != 0)
        return RESUME_STATE_OTHER_SLOT;
    if (strcmp(st->systemid, slot->systemid) != 0)
        return RESUME_STATE_OTHER_CLUSTER;
    if (slot->created)
        return RESUME_SLOT_DROPPED;
    if (slot->confirmed_flush > st->lsn)
        return RESUME_SLOT_PAST_STATE;
    if (st->lsn > slot->server_wal_end)
        return RESUME_STATE_PAST_SERVER;
    /* A crash can move the slot back (it is saved at checkpoints); the saved
     * position avoids re-sending what Kafka has. */
    plan->start = st->lsn;
    plan->saved = st->lsn;
    plan->note = RESUME_NOTE_SAVED;
    return RESUME_OK;
}

enum resume_reason resume_first_start(const struct resume_first *in, const struct resume_slot *slot,
                                      struct resume_plan *plan)
{
    enum resume_reason why;

    memset(plan, 0, sizeof(*plan));
    plan->start = slot->confirmed_flush;
    why = from_state(in, slot, plan);
    if (why != RESUME_OK)
        return why;
    if (in->start_lsn != 0) {
        /* The server would move an older start forward silently (P8). */
        if (in->start_lsn > slot->server_wal_end)
            return RESUME_START_PAST_SERVER;
        if (in->start_lsn < slot->confirmed_flush)
            return RESUME_START_BEFORE_SLOT;
        plan->start = in->start_lsn;
    }
    /* Kafka has every transaction up to the checkpoint: a server that
     * re-sends them (slot moved back, state file behind) is skipped. */
    if (in->checkpoint > plan->start)
        plan->start = in->checkpoint;
    return RESUME_OK;
}

enum resume_reason resume_reconnect(uint64_t delivered, uint64_t checkpoint, const char *systemid,
                                    const struct resume_slot *slot, struct resume_plan *plan)
{
    memset(plan, 0, sizeof(*plan));
    plan->start = delivered;
    if (checkpoint > delivered) {
        /* The old producer is gone, so a fresh tracker loses no reports. */
        plan->start = checkpoint;
        plan->new_tracker = true;
    }
    if (strcmp(slot->systemid, systemid) != 0)
        return RESUME_OTHER_CLUSTER;
    if (slot->confirmed_flush > plan->start)
        return RESUME_SLOT_PAST_DELIVERED;
    return RESUME_OK;
}

enum resume_reason resume_checkpoint(uint64_t checkpoint, const struct resume_slot *slot)
{
    return checkpoint > slot->server_wal_end ? RESUME_CHECKPOINT_PAST_SERVER : RESUME_OK;
}
