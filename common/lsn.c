/*
 * LSN text form, as pg_lsn's input/output functions write it: upper-case hex,
 * no leading zeros, '/' between the high and low 32 bits.
 */
#include "lsn.h"

#include <stdio.h>

#include "hex.h"

/* Reads 1..8 hex digits; pg_lsn_in accepts the same lengths. */
static const char *parse_half(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    int n = 0;

    for (; hex_value(*s) >= 0; s++, n++) {
        if (n == 8)
            return NULL;
        v = (v << 4) | (uint32_t)hex_value(*s);
    }
    if (n == 0)
        return NULL;
    *out = v;
    return s;
}

bool lsn_parse(const char *s, uint64_t *out)
{
    uint32_t hi, lo;

    if (s == NULL)
        return false;
    s = parse_half(s, &hi);
    if (s == NULL || *s != '/')
        return false;
    s = parse_half(s + 1, &lo);
    if (s == NULL || *s != '\0')
        return false;
    *out = ((uint64_t)hi << 32) | lo;
    return true;
}

char *lsn_format(uint64_t lsn, char *buf, size_t buflen)
{
    snprintf(buf, buflen, LSN_FMT, LSN_ARGS(lsn));
    return buf;
}
