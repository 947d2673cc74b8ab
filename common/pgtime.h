/*
 * PostgreSQL's clock: its protocol and its timestamps count microseconds
 * since 2000-01-01 00:00 UTC (docs/protocol.md#the-copyboth-envelope).
 */
#ifndef ORDERS_COMMON_PGTIME_H
#define ORDERS_COMMON_PGTIME_H

#include <stdint.h>

/* Microseconds between the Unix epoch and PostgreSQL's. */
#define PG_EPOCH_OFFSET_US INT64_C(946684800000000)

static inline int64_t pgtime_to_unix_us(int64_t pg_us)
{
    return pg_us + PG_EPOCH_OFFSET_US;
}

static inline int64_t pgtime_from_unix_us(int64_t unix_us)
{
    return unix_us - PG_EPOCH_OFFSET_US;
}

#endif
