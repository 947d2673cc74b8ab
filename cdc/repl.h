/*
 * The replication connection: libpq in logical walsender mode
 * (replication=database). Checks the server's preconditions, creates the
 * publication and the pgoutput slot when missing, starts streaming, and moves
 * CopyBoth messages in and status updates out. Does not log; every failure
 * is returned with a message in the caller's buffer. libpq stays inside it
 * and the other database modules (tools/check_deps.sh).
 */
#ifndef ORDERS_CDC_REPL_H
#define ORDERS_CDC_REPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "compiler.h"
#include "replmsg.h"

/* A walsender, as pg_stat_replication shows it: enough to know it again. */
struct repl_walsender {
    int pid;                   /* 0: unknown */
    char backend_start[48];    /* its text form, in UTC */
    char application_name[64]; /* NAMEDATALEN */
    char client[80];           /* "host:port", or "local socket" */
};

enum repl_status {
    REPL_OK = 0,
    REPL_ERETRY = -1, /* connection-level trouble: back off and reconnect */
    REPL_EFATAL = -2, /* configuration the relay cannot fix: stop and say what to do */
    REPL_EBUSY = -3,  /* the slot is active in another session */
    REPL_ESTOP = -4,  /* stop_fd became readable while waiting for the server */
};

struct repl_opts {
    const char *dburl; /* libpq URI or conninfo; replication=database is added */
    const char *slot;
    const char *publication;
    const char *table_schema;
    const char *table_name;
    bool create_slot;
    bool create_publication;
    /* PostgreSQL 17+: create the slot with FAILOVER, so standbys with
     * sync_replication_slots keep a copy a promotion can continue from */
    bool failover_slot;
    int proto_version;
    bool messages; /* message mode: the publication may be empty (messages are always on) */
    int connect_timeout_s;
    int stop_fd; /* readable = give up waiting (signal self-pipe), or -1 */
    /* The replication connection's application_name (unless the URL sets
     * one): "cdc-relay/" and an id of this process, so its walsender is
     * known in pg_stat_replication. */
    const char *application_name;
    /* Walsenders this process opened earlier (borrowed for the call): when
     * one of them still holds the slot, it is ended (pg_terminate_backend)
     * and REPL_EBUSY says so with holder_own set. */
    const struct repl_walsender *own;
    size_t nown;
};

/* What the server said about the slot before streaming. */
struct repl_slot_info {
    bool created;             /* this call created it */
    bool failover;            /* the slot has failover = true (PostgreSQL 17+) */
    uint64_t confirmed_flush; /* slot's confirmed_flush_lsn (consistent point if created) */
    bool publication_created;
    char dbname[128];
    char systemid[32];  /* IDENTIFY_SYSTEM systemid: which cluster this is */
    uint32_t timeline;  /* IDENTIFY_SYSTEM timeline: a promotion moves it on */
    int server_version; /* PQserverVersion, e.g. 170006 */
    /* A failover slot on 17+: what the primary shows missing for a standby's
     * copy to survive a promotion ("" when nothing; docs/operations.md) */
    char failover_gaps[512];
    uint64_t server_wal_end;    /* IDENTIFY_SYSTEM xlogpos */
    struct repl_walsender self; /* this connection's walsender */
    /* REPL_EBUSY: the session holding the slot (pid 0 when unknown), and
     * whether it was one of opts->own, now asked to end. */
    struct repl_walsender holder;
    bool holder_own;
};

struct repl_conn;

/*
 * Connects (cdc/pgconn.c), runs IDENTIFY_SYSTEM, validates wal_level, the
 * publication (and that it lists the table with inserts published) and the
 * slot (pgoutput, same database, not invalidated, not active elsewhere),
 * creating the publication and then the slot when missing and allowed. A
 * slot active for one of opts->own is asked to let go (REPL_EBUSY,
 * info->holder_own). On REPL_OK *out is new (free with repl_close). Returns
 * a repl_status; err says what to fix.
 */
enum repl_status repl_open(const struct repl_opts *opts, struct repl_conn **out,
                           struct repl_slot_info *info, char *err, size_t errlen) MUSTCHECK;

/* START_REPLICATION SLOT ... LOGICAL start_lsn (proto_version, publication_names). */
enum repl_status repl_start(struct repl_conn *rc, uint64_t start_lsn, char *err,
                            size_t errlen) MUSTCHECK;

/*
 * Receives one CopyData message without blocking and parses its envelope
 * (cdc/replmsg.c). Returns 1 with *msg filled (its data borrowed until the
 * next repl_recv or repl_close), 0 when nothing is buffered (wait for
 * repl_socket to be readable, then call again), or a negative repl_status
 * when the stream ended or failed (REPL_EFATAL for a message that is not
 * XLogData or a keepalive, or shorter than its header).
 */
int repl_recv(struct repl_conn *rc, struct replmsg *msg, char *err, size_t errlen) MUSTCHECK;

/* Reads what the socket has into libpq's buffer; call when it is readable. */
enum repl_status repl_consume(struct repl_conn *rc, char *err, size_t errlen) MUSTCHECK;

/* The socket to poll for reading. */
int repl_socket(const struct repl_conn *rc);

/* Sends a standby status update ('r'): write, flush, apply LSNs, client clock
 * now_pg_us (µs since 2000-01-01) and whether the server should reply. */
enum repl_status repl_send_status(struct repl_conn *rc, uint64_t write_lsn, uint64_t flush_lsn,
                                  uint64_t apply_lsn, int64_t now_pg_us, bool reply_requested,
                                  char *err, size_t errlen) MUSTCHECK;

/* Ends the copy stream politely (CopyDone, then drain to CommandComplete for
 * at most timeout_ms) and closes the connection. NULL-safe. */
void repl_close(struct repl_conn *rc, int timeout_ms);

/* Closes without the polite end: for a connection already broken. NULL-safe. */
void repl_abort(struct repl_conn *rc);

/* DROP_REPLICATION_SLOT for the slot this connection created and never
 * streamed from, so a refused start leaves nothing that holds WAL. Call
 * before repl_start only. */
enum repl_status repl_drop_slot(struct repl_conn *rc, char *err, size_t errlen) MUSTCHECK;

/* libpq's run-time version number (PQlibVersion), for --version and build_info. */
int repl_libpq_version(void);

#endif
