/*
 * Order request validation: turns a POST /orders body into a struct
 * order_request or a client-facing error message, and checks order ids.
 * Pure: no I/O, no logging, no globals; safe to fuzz and to call from any thread.
 */
#ifndef ORDERS_API_ORDERS_H
#define ORDERS_API_ORDERS_H

#include <stdbool.h>
#include <stddef.h>

#define ORDERS_ITEM_MAX_BYTES 200 /* UTF-8 bytes, not characters */
#define ORDERS_QUANTITY_MIN   1
#define ORDERS_QUANTITY_MAX   10000
#define ORDERS_ID_LEN         36  /* canonical 8-4-4-4-12 uuid text */
#define ORDERS_ERR_MAX        256 /* room for every message orders.c writes */

struct order_request {
    char item[ORDERS_ITEM_MAX_BYTES + 1]; /* NUL-terminated; contains no NUL */
    size_t item_len;                      /* bytes, <= ORDERS_ITEM_MAX_BYTES */
    int quantity;                         /* ORDERS_QUANTITY_MIN..ORDERS_QUANTITY_MAX */
    /* Not from the body: the W3C trace context stored with the event (set by
     * http.c after parsing, api/traceparent.h); NULL: none. Borrowed. */
    const char *traceparent;
};

enum orders_status {
    ORDERS_OK = 0,
    ORDERS_EEMPTY,        /* body is empty */
    ORDERS_EJSON,         /* not well-formed JSON (or not UTF-8, or a number jansson cannot hold) */
    ORDERS_ENOTOBJECT,    /* well-formed, but the top level is not an object */
    ORDERS_EUNKNOWNFIELD, /* a member other than "item" and "quantity" */
    ORDERS_EITEM,         /* item missing, not a string, blank, too long, or contains NUL */
    ORDERS_EQUANTITY,     /* quantity missing, not an integer, or out of range */
};

/*
 * Validates a request body of len bytes (need not be NUL-terminated).
 * Rules: the body is one JSON object with exactly the members "item" (a string
 * of 1..200 UTF-8 bytes, not only whitespace, no NUL) and "quantity" (a JSON
 * integer literal 1..10000; 2.0, "2", true and 1e2 are rejected). Unknown and
 * duplicate members are rejected. The item is stored as sent (not trimmed).
 * On ORDERS_OK fills *out. On any error fills errbuf with a message for the
 * client: printable ASCII only, naming the offending field, truncated to fit
 * errlen (ORDERS_ERR_MAX holds every message whole).
 * @returns ORDERS_OK or the error class. Thread-safe.
 */
enum orders_status orders_parse_request(const char *body, size_t len, struct order_request *out,
                                        char *errbuf, size_t errlen);

/* Short static description of a status, e.g. "unknown field". Never NULL. */
const char *orders_strerror(enum orders_status status);

/*
 * True if s[0..len) is a uuid in canonical text form: 36 characters, hex
 * digits (either case) in groups of 8-4-4-4-12 separated by '-'. Other forms
 * PostgreSQL would accept (braces, no hyphens) are rejected on purpose so an
 * order has exactly one URL.
 */
bool orders_id_valid(const char *s, size_t len);

/* jansson's run-time version ("2.14"), for --version and build_info. */
const char *orders_jansson_version(void);

#endif
