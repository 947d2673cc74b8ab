/*
 * W3C Trace Context (Level 1, https://www.w3.org/TR/trace-context/) for
 * POST /orders: the request's traceparent header checked, or a new one made
 * from the OS's random source, so every outbox event carries a trace
 * context. Parsing is pure (no I/O, no logging, thread-safe); only
 * traceparent_new reads randomness.
 */
#ifndef ORDERS_API_TRACEPARENT_H
#define ORDERS_API_TRACEPARENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "00-" trace-id (32) "-" parent-id (16) "-" flags (2) */
#define TRACEPARENT_LEN 55

/*
 * Checks a traceparent header value of len bytes (not NUL-terminated) by the
 * spec's rules: lower-case hex only; version not "ff"; trace-id and
 * parent-id not all zeros; version 00 exactly 55 bytes; a higher version at
 * least 55 bytes, with a '-' after the flags when longer (its extra fields
 * are dropped). On success writes the version-00 form (the same bytes for a
 * version-00 value) to out, NUL-terminated, and returns true.
 */
bool traceparent_parse(const char *value, size_t len, char out[TRACEPARENT_LEN + 1]);

/*
 * Formats a new version-00 traceparent from 24 random bytes: the first 16
 * are the trace-id, the next 8 the parent-id (a byte is forced non-zero when
 * either is all zeros, which the spec forbids), flags "00" (not sampled: the
 * api records no span, so it claims no recording). Pure.
 */
void traceparent_format(const uint8_t random[24], char out[TRACEPARENT_LEN + 1]);

/* traceparent_format from getrandom(2). Returns false (out untouched) when
 * the OS has no randomness to give (errno set). Thread-safe. */
bool traceparent_new(char out[TRACEPARENT_LEN + 1]);

#endif
