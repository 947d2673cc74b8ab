/*
 * One hex digit's value, for the parsers that read hex text (LSNs, %XX
 * escapes in URIs, bytea's hex output). Header-only; libc only.
 */
#ifndef ORDERS_COMMON_HEX_H
#define ORDERS_COMMON_HEX_H

/* 0..15 for [0-9a-fA-F], -1 for anything else. */
static inline int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

#endif
