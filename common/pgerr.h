/*
 * What a PostgreSQL error means to the program that got it, decided by its
 * SQLSTATE alone. The server translates its messages (lc_messages), so no
 * decision may ever read them. One table for orders-api, the stream relay and
 * the poll relay; each maps a kind to its own action. Pure: no I/O, no libpq.
 */
#ifndef ORDERS_COMMON_PGERR_H
#define ORDERS_COMMON_PGERR_H

#include <stdbool.h>
#include <stddef.h>

#define PGERR_SQLSTATE_LEN 5

enum pgerr_kind {
    /* Not listed below: a bug, a constraint, bad data, a missing publication:
     * a person must look. */
    PGERR_PERMANENT = 0,
    /* Class 08, or no SQLSTATE at all (libpq's own failure: no server, a
     * broken socket, TLS): the link failed; connect again. */
    PGERR_CONNECTION,
    /* A server state that passes: shutting down or starting up (57P01,
     * 57P02, 57P03, 57P05), out of resources (class 53), a transaction
     * rolled back for serialization or deadlock (class 40), a cancelled
     * statement (57014), a lock not available (55P03). */
    PGERR_TRANSIENT,
    /* This session's own state, which a new session cures: read-only
     * (25006, from default_transaction_read_only or a standby), a failed
     * transaction block (25P02), a prepared statement gone (26000). */
    PGERR_SESSION,
    /* Object in use (55006): a replication slot active in another session. */
    PGERR_IN_USE,
    /* Who or where: bad credentials or no pg_hba.conf entry (class 28), an
     * unknown database (3D000), insufficient privilege (42501: no
     * REPLICATION attribute, no CONNECT, no grant). */
    PGERR_LOGIN,
    /* The schema is not there yet: undefined table (42P01), schema (3F000)
     * or column (42703: one a later migration adds), as before
     * `orders-api --migrate`. */
    PGERR_SCHEMA,
};

/* The kind of sqlstate (five characters); NULL or "" is PGERR_CONNECTION. */
enum pgerr_kind pgerr_classify(const char *sqlstate);

/* The kind's name ("permanent", "connection", ...), for logs and tests. */
const char *pgerr_kind_name(enum pgerr_kind kind);

/*
 * Finds the SQLSTATE in a message libpq formatted at PQERRORS_VERBOSE
 * ("...failed: FATAL:  28P01: password authentication failed..."): the last
 * "<severity>:  XXXXX: " in msg, the severity being any word (translated).
 * This is how a failed connection's code is read: libpq keeps no result for
 * it. Returns true and writes the code (NUL-terminated) to out, or false
 * when msg holds none (a failure on libpq's side).
 */
bool pgerr_sqlstate_in_message(const char *msg, char out[PGERR_SQLSTATE_LEN + 1]);

/*
 * Removes the "LOCATION:  function, file:line" lines PQERRORS_VERBOSE adds
 * (libpq's own words, never translated by the server), in place, so a
 * verbose connection error reads like a default one in a log line.
 */
void pgerr_drop_location(char *msg);

#endif
