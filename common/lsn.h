/*
 * PostgreSQL LSNs: 64-bit WAL positions written as "X/Y" (two hex halves).
 * Pure functions, no allocation.
 */
#ifndef ORDERS_COMMON_LSN_H
#define ORDERS_COMMON_LSN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LSN_FMT       "%X/%X"
#define LSN_ARGS(lsn) ((unsigned)((uint64_t)(lsn) >> 32)), ((unsigned)(uint64_t)(lsn))
#define LSN_STR_MAX   18 /* "FFFFFFFF/FFFFFFFF" plus NUL */

/* Parse "X/Y" (1..8 hex digits each side, nothing else). Returns false on bad input. */
bool lsn_parse(const char *s, uint64_t *out);

/* Format into buf (at least LSN_STR_MAX bytes). Returns buf. */
char *lsn_format(uint64_t lsn, char *buf, size_t buflen);

#endif
