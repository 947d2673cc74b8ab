/*
 * Where a stream starts, and the checks that refuse a start that could skip
 * events silently (docs/protocol.md#r9, #p8, #p11): the saved position
 * against the slot and the cluster, --start-lsn against the slot and the
 * server, the --exactly-once checkpoint against the server, and on every
 * reconnect the cluster and the slot against what was delivered. Pure: the
 * relay loads the state file, asks the server, and logs what these
 * functions decide.
 */
#ifndef ORDERS_CDC_RESUME_H
#define ORDERS_CDC_RESUME_H

#include <stdbool.h>
#include <stdint.h>

#include "compiler.h"
#include "state.h"

/* Why a start is refused; RESUME_OK: it is not. Each refusal needs a person. */
enum resume_reason {
    RESUME_OK = 0,
    /* first start of a run, against the state file */
    RESUME_STATE_OTHER_SLOT,    /* the file belongs to another slot */
    RESUME_STATE_OTHER_CLUSTER, /* written against another system identifier */
    RESUME_SLOT_DROPPED,        /* the slot had to be created, the file says it was used */
    RESUME_SLOT_PAST_STATE,     /* the slot's confirmed_flush is past the saved position */
    RESUME_STATE_PAST_SERVER,   /* the saved position is past the server's WAL end */
    /* first start, --start-lsn */
    RESUME_START_PAST_SERVER, /* past the server's WAL end */
    RESUME_START_BEFORE_SLOT, /* before the slot's confirmed_flush */
    /* every new producer with --exactly-once */
    RESUME_CHECKPOINT_PAST_SERVER, /* the checkpoint is past the server's WAL end */
    /* reconnects */
    RESUME_OTHER_CLUSTER,       /* the server's system identifier changed */
    RESUME_SLOT_PAST_DELIVERED, /* the slot's confirmed_flush is past what was delivered */
};

/* What the server said about the slot (repl_open). */
struct resume_slot {
    bool created;             /* this connection created it */
    uint64_t confirmed_flush; /* its confirmed_flush_lsn (consistent point if created) */
    uint64_t server_wal_end;  /* IDENTIFY_SYSTEM xlogpos */
    const char *systemid;     /* IDENTIFY_SYSTEM systemid */
};

/* Besides the refusal, what the first start's log says about the state file. */
enum resume_note {
    RESUME_NOTE_NONE = 0,
    RESUME_NOTE_NO_STATE_YET, /* a state file is kept, none exists yet, the slot is not new */
    RESUME_NOTE_SAVED,        /* resuming from the saved position */
};

struct resume_first {
    const char *slot;
    bool state_file;                 /* a state file is kept */
    const struct relay_state *state; /* what it holds; NULL when none exists yet */
    uint64_t start_lsn;              /* --start-lsn; 0: none */
    uint64_t checkpoint;             /* --exactly-once checkpoint's end LSN; 0: none */
};

struct resume_plan {
    uint64_t start;        /* START_REPLICATION position, and the tracker's start */
    uint64_t saved;        /* what the state file holds (0: none) */
    enum resume_note note; /* first start only */
    bool new_tracker;      /* reconnect: the tracker starts over at start */
};

/*
 * The first start of a run: from the slot, else the saved position, else
 * --start-lsn, raised to the checkpoint (Kafka has everything up to it).
 * *plan is filled in any case. Returns the refusal or RESUME_OK.
 */
enum resume_reason resume_first_start(const struct resume_first *in, const struct resume_slot *slot,
                                      struct resume_plan *plan) MUSTCHECK;

/*
 * A reconnect: from what was delivered, or the checkpoint when it is newer
 * (a commit reported failed may have gone through; the tracker starts over
 * there, *plan says so even when the start is refused). systemid is the
 * cluster of the run's first start.
 */
enum resume_reason resume_reconnect(uint64_t delivered, uint64_t checkpoint, const char *systemid,
                                    const struct resume_slot *slot,
                                    struct resume_plan *plan) MUSTCHECK;

/* --exactly-once, after reading the checkpoint of a new producer. */
enum resume_reason resume_checkpoint(uint64_t checkpoint, const struct resume_slot *slot) MUSTCHECK;

#endif
