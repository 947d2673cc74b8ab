/*
 * Durations as operators write them, in every time option and variable of
 * both binaries: "500ms", "10s", "15m", "2h", "1d", "1h30m", "2.5s". A bare
 * number keeps the unit the option had before units existed (seconds, or
 * milliseconds for the *-ms options), so old configurations read the same.
 * Pure, libc only.
 */
#ifndef ORDERS_COMMON_DURATION_H
#define ORDERS_COMMON_DURATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The unit of a number written without one. */
enum duration_unit { DURATION_BARE_MS, DURATION_BARE_S };

/* Longest duration any option takes: 3650 days, in milliseconds. */
#define DURATION_MAX_MS (INT64_C(3650) * 86400 * 1000)

/* Room for any text duration_format_ms writes, NUL included. */
#define DURATION_STR_MAX 32

/*
 * Parses s: a bare non-negative number (bare gives its unit), or one or more
 * NUMBER UNIT parts with units ms, s, m, h, d ("1h30m"). Numbers are decimal
 * with an optional fraction ("2.5s"); nothing else is allowed (no sign, no
 * spaces). Sub-millisecond remainders are dropped ("1.5ms" is 1 ms).
 * @returns true with *out_ms set, or false: not a duration, or longer than
 * DURATION_MAX_MS.
 */
bool duration_parse_ms(const char *s, enum duration_unit bare, int64_t *out_ms);

/* Writes ms in the largest single unit that keeps it exact: "0", "500ms",
 * "10s", "90s", "15m", "2h", "1d". For messages and --help. Returns buf. */
char *duration_format_ms(int64_t ms, char *buf, size_t len);

#endif
