/*
 * traceparent checks and generation. The header is parsed strictly (a vendor
 * that cannot parse it restarts the trace, W3C Trace Context section 4.3),
 * and a new trace and span id come from getrandom(2), never from rand().
 */
#include "traceparent.h"

#include <errno.h>
#include <string.h>
#include <sys/random.h>

static bool lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static bool all_zero(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] != '0')
            return false;
    return true;
}

bool traceparent_parse(const char *value, size_t len, char out[TRACEPARENT_LEN + 1])
{
    /* version(2) '-' trace-id(32) '-' parent-id(16) '-' flags(2) */
    const char *trace = value + 3, *parent = value + 36, *flags = value + 53;

    if (len < TRACEPARENT_LEN || !lower_hex(value, 2) || memcmp(value, "ff", 2) == 0 ||
        value[2] != '-' || value[35] != '-' || value[52] != '-' || !lower_hex(trace, 32) ||
        !lower_hex(parent, 16) || !lower_hex(flags, 2) || all_zero(trace, 32) ||
        all_zero(parent, 16))
        return false;
    /* Version 00 has exactly these fields; a later version may add more
     * after a '-', which a version-00 vendor drops. */
    if (memcmp(value, "00", 2) == 0 ? len != TRACEPARENT_LEN
                                    : len > TRACEPARENT_LEN && value[TRACEPARENT_LEN] != '-')
        return false;
    memcpy(out, "00", 2);
    memcpy(out + 2, value + 2, TRACEPARENT_LEN - 2);
    out[TRACEPARENT_LEN] = '\0';
    return true;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[b[i] >> 4];
        out[2 * i + 1] = digits[b[i] & 0xf];
    }
}

void traceparent_format(const uint8_t random[24], char out[TRACEPARENT_LEN + 1])
{
    uint8_t b[24];
    static const uint8_t zero[16];

    memcpy(b, random, sizeof(b));
    if (memcmp(b, zero, 16) == 0)
        b[15] = 1;
    if (memcmp(b + 16, zero, 8) == 0)
        b[23] = 1;
    memcpy(out, "00-", 3);
    hex(b, 16, out + 3);
    out[35] = '-';
    hex(b + 16, 8, out + 36);
    memcpy(out + 52, "-00", 4); /* with the NUL */
}

bool traceparent_new(char out[TRACEPARENT_LEN + 1])
{
    uint8_t b[24];
    size_t got = 0;

    while (got < sizeof(b)) {
        ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            return false;
        }
        got += (size_t)n;
    }
    traceparent_format(b, out);
    return true;
}
