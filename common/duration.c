/*
 * Integer arithmetic only: "0.1s" must be exactly 100 ms, and a double
 * would make "2.3s" 2299 ms.
 */
#include "duration.h"

#include <stdio.h>
#include <string.h>

struct unit {
    const char *name;
    int64_t ms;
};

/* Longest names first, so "ms" is not read as "m" followed by junk. */
static const struct unit units[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60 * 1000}, {"h", 3600 * 1000}, {"d", 86400 * 1000},
};

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* A NUMBER as read, before its unit is known: the whole part and the
 * fraction as numerator / denominator. */
struct number {
    int64_t whole;
    int64_t frac, frac_den;
};

/* Reads one NUMBER ("12", "2.5") at *p and moves *p past it. */
static bool read_number(const char **p, struct number *n)
{
    const char *s = *p;

    n->whole = 0;
    n->frac = 0;
    n->frac_den = 1;
    if (!is_digit(*s))
        return false;
    for (; is_digit(*s); s++) {
        if (n->whole > DURATION_MAX_MS) /* already too long in any unit */
            return false;
        n->whole = n->whole * 10 + (*s - '0');
    }
    if (*s == '.') {
        s++;
        if (!is_digit(*s))
            return false;
        for (; is_digit(*s); s++) {
            /* Nine digits resolve 0.09 ms of a day; more would only risk
             * overflowing frac * unit_ms. */
            if (n->frac_den < INT64_C(1000000000)) {
                n->frac = n->frac * 10 + (*s - '0');
                n->frac_den *= 10;
            }
        }
    }
    *p = s;
    return true;
}

/* n in unit_ms units, in ms; false past DURATION_MAX_MS. */
static bool scale(const struct number *n, int64_t unit_ms, int64_t *out)
{
    if (n->whole > DURATION_MAX_MS / unit_ms)
        return false;
    *out = n->whole * unit_ms + n->frac * unit_ms / n->frac_den;
    return *out <= DURATION_MAX_MS;
}

bool duration_parse_ms(const char *s, enum duration_unit bare, int64_t *out_ms)
{
    const char *p = s;
    int64_t total = 0;
    struct number n;

    if (s == NULL || !read_number(&p, &n))
        return false;
    if (*p == '\0') /* a bare number */
        return scale(&n, bare == DURATION_BARE_MS ? 1 : 1000, out_ms);
    for (;;) {
        const struct unit *u = NULL;
        int64_t part;

        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
            size_t len = strlen(units[i].name);

            if (strncmp(p, units[i].name, len) == 0 && !(p[len] >= 'a' && p[len] <= 'z')) {
                u = &units[i];
                p += len;
                break;
            }
        }
        if (u == NULL || !scale(&n, u->ms, &part) || part > DURATION_MAX_MS - total)
            return false;
        total += part;
        if (*p == '\0')
            break;
        if (!read_number(&p, &n))
            return false;
    }
    *out_ms = total;
    return true;
}

char *duration_format_ms(int64_t ms, char *buf, size_t len)
{
    if (len == 0)
        return buf;
    if (ms <= 0) {
        snprintf(buf, len, "0");
        return buf;
    }
    /* ms always divides, so the loop always writes. */
    for (size_t i = sizeof(units) / sizeof(units[0]); i-- > 0;) {
        if (ms % units[i].ms == 0) {
            snprintf(buf, len, "%lld%s", (long long)(ms / units[i].ms), units[i].name);
            break;
        }
    }
    return buf;
}
