/*
 * Every Postgres connection of the relay (replication, poll, heartbeat,
 * publication check) is made here: one set of parameters (the URL, the
 * relay's defaults, the session settings it pins) and one way to connect
 * that keeps the server's SQLSTATE, so a failed login is classified by its
 * code (common/pgerr.h), never by its translated text. Does not log; every
 * failure comes back with a message in the caller's buffer.
 */
#ifndef ORDERS_CDC_PGCONN_H
#define ORDERS_CDC_PGCONN_H

#include <stdbool.h>
#include <stddef.h>

#include <libpq-fe.h>

#include "compiler.h"
#include "pgerr.h"

enum pgconn_status {
    PGCONN_OK = 0,
    PGCONN_ERETRY, /* nothing a person must do: connect again later */
    PGCONN_EFATAL, /* a login, database, URL or server the relay cannot use as it is */
    PGCONN_ESTOP,  /* stop_fd became readable while connecting */
};

struct pgconn_opts {
    const char *dburl;            /* libpq URI or key=value string */
    const char *application_name; /* unless the URL sets one */
    bool replication;             /* replication=database (a logical walsender) */
    int connect_timeout_s;        /* unless the URL sets connect_timeout; 0: none */
    int stop_fd;                  /* readable = give up (signal self-pipe), or -1 */
};

/*
 * Connects without blocking past connect_timeout or a stop request, with TCP
 * keepalives, client_encoding UTF8, search_path pg_catalog, DateStyle ISO,
 * IntervalStyle postgres, extra_float_digits 3 and TimeZone UTC pinned (the
 * URL's own "options" are kept before them). Refuses a SQL_ASCII database.
 * Returns a new connection (PQfinish it) with *st PGCONN_OK, or NULL with *st
 * and err set. A server error is classified by its SQLSTATE (PGERR_LOGIN,
 * PGERR_PERMANENT and PGERR_SCHEMA are PGCONN_EFATAL); a failure on libpq's
 * side is PGCONN_ERETRY, except a URL that does not parse and a server asking
 * for a password none was given (PGCONN_EFATAL).
 */
PGconn *pgconn_open(const struct pgconn_opts *o, enum pgconn_status *st, char *err, size_t errlen);

/*
 * pgconn_open in two halves, for a connection made without blocking
 * (cdc/watch.c drives it from the stream loop's poll()): pgconn_start
 * returns the connection PQconnectStartParams made with the same parameters
 * (NULL with *st and err when the URL does not parse or memory ran out) and
 * the connect_timeout in effect (0: none); drive it with PQconnectPoll. Once
 * that says PGRES_POLLING_OK or PGRES_POLLING_FAILED, pgconn_established
 * classifies a failure and checks the session as pgconn_open does: PGCONN_OK,
 * or a status with err (the caller PQfinishes the connection).
 */
PGconn *pgconn_start(const struct pgconn_opts *o, int *timeout_s, enum pgconn_status *st, char *err,
                     size_t errlen);
enum pgconn_status pgconn_established(PGconn *conn, bool replication, char *err, size_t errlen);

/* The SQLSTATE of res, or "" (no result, or an error libpq made up). */
const char *pgconn_sqlstate(const PGresult *res);

/* What a failed command's result means: PGERR_CONNECTION when the connection
 * is gone or the error has no SQLSTATE, else its code's kind. */
enum pgerr_kind pgconn_result_kind(PGconn *conn, const PGresult *res);

/* Formats an error for one log line: libpq's messages end in a newline and
 * DETAIL/HINT add more lines, which become spaces. */
void pgconn_set_err(char *err, size_t errlen, const char *fmt, ...) PRINTF_FMT(3, 4);

#endif
