/*
 * Hexadecimal digits, for the text forms that carry them (LSNs, %XX escapes
 * in connection URIs, test fixtures).
 */
#ifndef ORDERS_COMMON_HEX_H
#define ORDERS_COMMON_HEX_H

/* The value of one hex digit (either case), or -1 for anything else. */
static inline int hex_digit(char c)
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
