/*
 * libpq for cdc-relay prune (cdc/prune.c): the WAL position and snapshot
 * horizon taken together, the slot's confirmed position, batched deletes and
 * whole-partition drops. SQL text from cdc/prune_sql.c; connections from
 * cdc/outbox_pg.c (cdc/pgconn.c's pinned session). Does not log; failures
 * come back with a message in the caller's buffer, classified by SQLSTATE.
 */
#ifndef ORDERS_CDC_PRUNE_PG_H
#define ORDERS_CDC_PRUNE_PG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "outbox.h"
#include "outbox_pg.h"

struct pg_conn;

/* What the table is: an ordinary table, or a partitioned one (the root). */
enum outbox_pg_status prune_pg_relkind(struct pg_conn *conn, const char *schema, const char *table,
                                       bool *partitioned, char *err, size_t errlen) MUSTCHECK;

/*
 * In one statement: pg_current_wal_insert_lsn() (*lsn) read after the
 * statement's snapshot was taken, and that snapshot's xmin (xid8 as text
 * in h, at least 24 bytes). Every transaction whose id precedes h had
 * inserted its commit record, which ends before *lsn.
 */
enum outbox_pg_status prune_pg_horizon(struct pg_conn *conn, uint64_t *lsn, char *h, size_t hlen,
                                       char *err, size_t errlen) MUSTCHECK;

struct prune_pg_slot {
    bool exists;
    bool usable;              /* logical, this database, not invalidated */
    char why[160];            /* why not usable */
    uint64_t confirmed_flush; /* 0 when NULL */
};

enum outbox_pg_status prune_pg_slot(struct pg_conn *conn, const char *slot,
                                    struct prune_pg_slot *out, char *err, size_t errlen) MUSTCHECK;

/* The cluster's system identifier (the state file's systemid), or "" when
 * this role may not read it (pg_control_system). */
enum outbox_pg_status prune_pg_systemid(struct pg_conn *conn, char *out, size_t outlen, char *err,
                                        size_t errlen) MUSTCHECK;

/* The predicate's values: the cutoff (Unix µs) and, in slot mode, H. */
struct prune_pg_bounds {
    int64_t cutoff_us;
    const char *horizon; /* xid8 text; NULL in poll mode */
};

/* One batch of prune_sql_batch: *last is the tuple id to continue after
 * (text, "(0,0)" at first; at least 32 bytes), updated. */
enum outbox_pg_status prune_pg_batch(struct pg_conn *conn, const char *sql,
                                     const struct prune_pg_bounds *b, char *last, size_t lastlen,
                                     int limit, uint64_t *locked, uint64_t *deleted, char *err,
                                     size_t errlen) MUSTCHECK;

/* prune_sql_count's answer. */
enum outbox_pg_status prune_pg_count(struct pg_conn *conn, const char *sql,
                                     const struct prune_pg_bounds *b, uint64_t *count, char *err,
                                     size_t errlen) MUSTCHECK;

/* Whether the root is range-partitioned on column alone. */
enum outbox_pg_status prune_pg_partitioning(struct pg_conn *conn, const char *schema,
                                            const char *table, const char *column, bool *ok,
                                            char *err, size_t errlen) MUSTCHECK;

struct prune_pg_partition {
    char schema[128], name[128];
    char relkind;
    bool ends_before_cutoff;
    char bound[256];
};

/* The root's partitions (prune_sql_partitions). *out is new (free()). */
enum outbox_pg_status prune_pg_partitions(struct pg_conn *conn, const char *sql, const char *schema,
                                          const char *table, int64_t cutoff_us,
                                          struct prune_pg_partition **out, size_t *n, char *err,
                                          size_t errlen) MUSTCHECK;

enum prune_pg_verdict {
    PRUNE_PG_DROPPED = 0, /* detached (and dropped unless keep) */
    PRUNE_PG_KEPT,        /* a row does not qualify */
    PRUNE_PG_BUSY,        /* a lock was not granted in time: next run */
};

/*
 * In one transaction: locks the partition (ACCESS EXCLUSIVE, waiting at
 * most lock_timeout_ms), runs check_sql (prune_sql_partition_check) on it,
 * and when every row qualifies (an empty partition too: its range is past)
 * detaches it from the root and drops it (keep: leaves it as a table of its
 * own). dry_run: the check
 * only, without locks. *rows gets the partition's rows.
 */
enum outbox_pg_status
prune_pg_partition_drop(struct pg_conn *conn, const char *root_schema, const char *root_table,
                        const struct prune_pg_partition *p, const char *check_sql,
                        const struct prune_pg_bounds *b, bool keep, bool dry_run,
                        int lock_timeout_ms, uint64_t *rows, enum prune_pg_verdict *verdict,
                        char *err, size_t errlen) MUSTCHECK;

#endif
