/*
 * Keyword/value arrays for libpq's PQconnectdbParams, made of the user's
 * parsed connection string, the program's defaults (which the string may
 * override) and the session settings every connection of both programs pins
 * (which it may not). Pure: the caller parses with PQconninfoParse and hands
 * each set keyword over; no libpq here.
 */
#ifndef ORDERS_COMMON_PGPARAMS_H
#define ORDERS_COMMON_PGPARAMS_H

#include <stddef.h>

/*
 * Pinned on every session, after the user's own "options": text travels as
 * UTF-8 (the server converts from the database's encoding once, or not at
 * all for a UTF8 database), whatever the database's or the role's
 * client_encoding; and no name is looked up outside pg_catalog, whatever
 * their search_path, so a table, function or view of the same name in
 * another schema is never used. The SQL names its tables with their schema.
 */
#define PGPARAMS_CLIENT_ENCODING "UTF8"
#define PGPARAMS_SEARCH_PATH     "pg_catalog"

struct pgparams {
    const char **keys; /* NULL-terminated, parallel to vals */
    const char **vals;
    int n, cap;
};

void pgparams_init(struct pgparams *p);

/* Frees what the arrays own; p is empty (pgparams_init state) afterwards. */
void pgparams_fini(struct pgparams *p);

/* Sets key to val (both copied), replacing an earlier value of key. */
void pgparams_set(struct pgparams *p, const char *key, const char *val);

/* Sets key only when it has no value yet: a default the user's string beats. */
void pgparams_default(struct pgparams *p, const char *key, const char *val);

/* key's value, borrowed until the next change of p; NULL when unset. */
const char *pgparams_get(const struct pgparams *p, const char *key);

/*
 * Pins the session: client_encoding, and "options" rebuilt as `before`,
 * then the user's own options, then `-c search_path=<search_path>`, then
 * `after` (each may be NULL; search_path NULL is PGPARAMS_SEARCH_PATH).
 * Server options given twice take the last value, so the user's can
 * override `before` (e.g. a statement_timeout) but neither the search_path
 * nor `after` (e.g. TimeZone=UTC). Values must not contain spaces.
 */
void pgparams_pin_session(struct pgparams *p, const char *search_path, const char *before,
                          const char *after);

#endif
