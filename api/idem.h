/*
 * Idempotency-Key helpers for POST /orders: the key syntax, and the hash of a
 * normalized request that tells a retry from a different request reusing a key.
 * Pure: no I/O, no logging, no allocation, no globals; thread-safe.
 */
#ifndef ORDERS_API_IDEM_H
#define ORDERS_API_IDEM_H

#include <stdbool.h>
#include <stddef.h>

#include "orders.h"

#define IDEM_KEY_MAX      255 /* Idempotency-Key length limit, bytes */
#define IDEM_HASH_HEX_LEN 64  /* idem_request_hash: hex SHA-256 */

/*
 * True if s[0..len) is a usable Idempotency-Key: 1..IDEM_KEY_MAX bytes, each
 * printable ASCII (0x20..0x7e). Compared byte for byte: "A" and "a" are two keys.
 */
bool idem_key_valid(const char *s, size_t len);

/*
 * Writes the lower-case hex SHA-256 of the normalized request to out (NUL-
 * terminated): the item bytes, one NUL byte, then the quantity in decimal
 * ("book", 2 hashes "book\0" "2"). Bodies that parse to the same item and
 * quantity (member order, whitespace, \u escapes) hash alike. req must be as
 * orders_parse_request filled it.
 */
void idem_request_hash(const struct order_request *req, char out[IDEM_HASH_HEX_LEN + 1]);

#endif
