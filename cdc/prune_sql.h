/*
 * The SQL of cdc-relay prune (cdc/prune.c), built from the configured table
 * and column names (quoted, never pasted). Pure: no I/O, no logging.
 *
 * "Delivered and old" is one predicate for every statement. Its parameters:
 * $1 the cutoff, Unix microseconds (text); in slot mode $2 the snapshot
 * horizon H, an xid8 (text). A row qualifies when its timestamp column is
 * before the cutoff and, in slot mode, its xmin precedes H (the transaction
 * that wrote it committed before the WAL position the slot has confirmed,
 * docs/operations.md#pruning-the-outbox), or, in poll mode, its published
 * column is set (the poll relay marks a row in the transaction that commits
 * after Kafka acknowledged it).
 */
#ifndef ORDERS_CDC_PRUNE_SQL_H
#define ORDERS_CDC_PRUNE_SQL_H

#include <stdbool.h>
#include <stddef.h>

#include "outbox.h"

#define PRUNE_SQL_MAX 4096

/* The predicate alone (for tests and the statements below). False when a
 * name is empty, the timestamp column unusable, or it does not fit. */
bool prune_sql_cond(const struct outbox_layout *layout, bool poll_mode, char *buf, size_t buflen);

/*
 * One batch, one statement (its own short transaction): locks up to $L
 * qualifying rows after the tuple id $T (SKIP LOCKED: a row another session
 * holds waits for the next run), deletes them by tuple id, and returns
 * (rows locked, rows deleted, the last tuple id locked as text, NULL when
 * none). $T and $L follow the predicate's parameters: $2 and $3 in poll
 * mode, $3 and $4 in slot mode. Walking the heap by tuple id makes a whole
 * run one pass over the table, however many batches.
 */
bool prune_sql_batch(const char *schema, const char *table, const struct outbox_layout *layout,
                     bool poll_mode, char *buf, size_t buflen);

/* --dry-run: the number of qualifying rows (one bigint). */
bool prune_sql_count(const char *schema, const char *table, const struct outbox_layout *layout,
                     bool poll_mode, char *buf, size_t buflen);

/*
 * A partition's verdict, run while it is locked: (rows, rows that do not
 * qualify). A partition is dropped only when the second is 0.
 */
bool prune_sql_partition_check(const char *schema, const char *table,
                               const struct outbox_layout *layout, bool poll_mode, char *buf,
                               size_t buflen);

/*
 * The partitions of the root $1.$2 (schema, name), one row each: schema,
 * name, relkind, the bound as the server prints it, and whether the
 * partition's range ends at or before the cutoff $3 (Unix microseconds) by
 * its upper bound (false for MAXVALUE, DEFAULT, or a bound that is not a
 * plain literal). The root must be range-partitioned on the timestamp
 * column alone (prune_sql_partitioning).
 */
bool prune_sql_partitions(const struct outbox_layout *layout, char *buf, size_t buflen);

/* Whether $1.$2 is range-partitioned on exactly the column $3 (one bool). */
const char *prune_sql_partitioning(void);

#endif
