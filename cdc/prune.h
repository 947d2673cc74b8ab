/*
 * cdc-relay prune (docs/operations.md#pruning-the-outbox): deletes outbox
 * rows older than a cutoff whose events were delivered, in small batches of
 * their own transaction each, or, for a partitioned outbox, detaches and
 * drops whole partitions. Never a row whose event Kafka has not
 * acknowledged:
 *   - stream mode: a WAL position L and a snapshot horizon H are taken
 *     together, so every transaction whose id precedes H committed before L;
 *     once the slot's confirmed position (or the relay's state file) has
 *     reached L, the rows such transactions wrote are delivered;
 *   - poll mode: a row is delivered when its published column is set.
 * The SQL is in cdc/prune_sql.c, the libpq side in cdc/prune_pg.c.
 */
#ifndef ORDERS_CDC_PRUNE_H
#define ORDERS_CDC_PRUNE_H

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "outbox.h"

/* Exit status of the command (besides 2, bad usage, from main). */
enum prune_exit {
    PRUNE_EXIT_OK = 0,      /* done (or --max-duration reached: the next run goes on) */
    PRUNE_EXIT_ERROR = 1,   /* could not prune (logged) */
    PRUNE_EXIT_NO_SLOT = 4, /* the slot is missing or unusable: nothing is known delivered */
    PRUNE_EXIT_BEHIND = 5,  /* the delivered position did not reach L within --confirm-timeout */
};

struct prune_config {
    const char *database_url;
    const char *table_schema;
    const char *table_name;
    const struct outbox_columns *columns;
    bool poll_mode;
    const char *slot;
    const char *state_file; /* NULL: none */
    int64_t now_us;         /* when the options were parsed */
    int64_t older_than_s;
    int batch_size;
    int batch_pause_ms;
    int max_duration_ms; /* 0: no limit */
    int wait_ms;         /* for the slot to reach L */
    int lock_timeout_ms; /* partition locks */
    bool dry_run;
    bool keep_detached;
    int connect_timeout_s;
    volatile sig_atomic_t *stop; /* set by SIGINT/SIGTERM: stop between batches */
    FILE *out;                   /* the summary line */
};

/* Runs the command, logs progress and errors, writes a summary line to
 * cfg->out; returns an enum prune_exit. */
int prune_run(const struct prune_config *cfg);

/*
 * Which position counts as delivered: the slot's confirmed position, or the
 * state file's when the file is the slot's and the cluster's (its position
 * is saved after Kafka acknowledged and before the slot is told, and is not
 * held back by --replay-window). Pure.
 */
uint64_t prune_delivered(uint64_t slot_confirmed, bool state_matches, uint64_t state_lsn);

#endif
