/*
 * Inside the replication connection module: cdc/repl.c (connection, stream,
 * status updates) and cdc/repl_check.c (the checks before streaming) share
 * the connection and the query helpers. Not for other modules.
 */
#ifndef ORDERS_CDC_REPL_INT_H
#define ORDERS_CDC_REPL_INT_H

#include <libpq-fe.h>

#include "compiler.h"
#include "pgerr.h"
#include "repl.h"

struct repl_conn {
    PGconn *conn;
    char *copybuf; /* last PQgetCopyData buffer, freed on the next receive */
    const struct repl_opts *opts;
    bool streaming;
};

/*
 * PQexec that a signal can interrupt: slot creation waits for every running
 * transaction to end (docs/protocol.md#p15), and an operator's SIGTERM must
 * not wait with it. Returns the last result (caller clears), or NULL when
 * stopped (*stopped; the query is cancelled) or the connection failed.
 */
PGresult *repl_exec_interruptible(struct repl_conn *rc, const char *sql, bool *stopped);

/* A failed command's repl_status, by the protocol and the SQLSTATE only. */
enum repl_status repl_classify(struct repl_conn *rc, const PGresult *res);

/* Runs sql expecting want: REPL_OK with *out (caller clears), else a status
 * with err filled and, when state is not NULL, the SQLSTATE ("" when none). */
enum repl_status repl_run_query(struct repl_conn *rc, const char *sql, ExecStatusType want,
                                PGresult **out, char state[PGERR_SQLSTATE_LEN + 1], char *err,
                                size_t errlen);

/* repl_run_query on the text fmt makes (at most 4 KiB). */
enum repl_status repl_queryf(struct repl_conn *rc, ExecStatusType want, PGresult **out,
                             char state[PGERR_SQLSTATE_LEN + 1], char *err, size_t errlen,
                             const char *fmt, ...) PRINTF_FMT(7, 8);

/* Room for a quoted name (the configured ones are at most 127 bytes). */
#define REPL_QUOTED_MAX 272

/* Writes s quoted as an identifier (PQescapeIdentifier) or, when literal,
 * as a string literal (PQescapeLiteral) into buf; false with err filled when
 * libpq cannot quote it or it does not fit. In walsender mode only the
 * simple query protocol works: values go into the text quoted. */
bool repl_quote(struct repl_conn *rc, const char *s, bool literal, char *buf, size_t len, char *err,
                size_t errlen);

/* IDENTIFY_SYSTEM, wal_level, the publication, the slot (cdc/repl_check.c);
 * fills *info. */
enum repl_status repl_check_server(struct repl_conn *rc, struct repl_slot_info *info, char *err,
                                   size_t errlen);

#endif
