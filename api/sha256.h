/*
 * SHA-256 (FIPS 180-4), one-shot, for the Idempotency-Key request hash.
 * Pure: no I/O, no allocation, no state between calls; thread-safe. Not for
 * secrets (no constant-time guarantees are needed or given).
 */
#ifndef ORDERS_API_SHA256_H
#define ORDERS_API_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_DIGEST_LEN 32 /* bytes */

/* Writes the SHA-256 digest of data[0..len) to out. data may be NULL when len is 0. */
void sha256_digest(const void *data, size_t len, uint8_t out[SHA256_DIGEST_LEN]);

#endif
