/*
 * Order request validation (see orders.h). jansson does the JSON and UTF-8
 * work; this file adds the field rules. Must never do I/O, log, or keep state:
 * it is the fuzzed surface of the API.
 */
#include "orders.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "compiler.h"

/* Longest piece of a client-chosen field name echoed back in an error. */
#define ORDERS_FIELD_ECHO_MAX 40

static const char *const status_names[] = {
    [ORDERS_OK] = "ok",
    [ORDERS_EEMPTY] = "empty body",
    [ORDERS_EJSON] = "invalid JSON",
    [ORDERS_ENOTOBJECT] = "body is not a JSON object",
    [ORDERS_EUNKNOWNFIELD] = "unknown field",
    [ORDERS_EITEM] = "invalid item",
    [ORDERS_EQUANTITY] = "invalid quantity",
};

const char *orders_strerror(enum orders_status status)
{
    if ((size_t)status >= sizeof(status_names) / sizeof(status_names[0]))
        return "unknown error";
    return status_names[status];
}

/*
 * Replaces every byte outside printable ASCII with '?', so messages that echo
 * client bytes (field names, jansson's "near '...'") are safe in JSON and logs.
 */
static void sanitize(char *s)
{
    for (; *s != '\0'; s++) {
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
    }
}

static enum orders_status fail(enum orders_status status, char *errbuf, size_t errlen,
                               const char *fmt, ...) PRINTF_FMT(4, 5);

static enum orders_status fail(enum orders_status status, char *errbuf, size_t errlen,
                               const char *fmt, ...)
{
    if (errlen > 0) {
        va_list ap;

        va_start(ap, fmt);
        /* clang-analyzer reports ap as uninitialized here once fail() is inlined: a
         * false positive (config.c's identical seterr is not flagged). */
        vsnprintf(errbuf, errlen, fmt, ap); /* NOLINT(clang-analyzer-valist.Uninitialized) */
        va_end(ap);
        sanitize(errbuf);
    }
    return status;
}

static bool is_blank(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (strchr(" \t\r\n\v\f", s[i]) == NULL || s[i] == '\0')
            return false;
    }
    return true;
}

static enum orders_status check_item(json_t *v, struct order_request *out, char *errbuf,
                                     size_t errlen)
{
    const char *s;
    size_t len;

    if (v == NULL)
        return fail(ORDERS_EITEM, errbuf, errlen, "item is required");
    if (!json_is_string(v))
        return fail(ORDERS_EITEM, errbuf, errlen, "item must be a string");
    s = json_string_value(v);
    len = json_string_length(v);
    if (len > ORDERS_ITEM_MAX_BYTES)
        return fail(ORDERS_EITEM, errbuf, errlen, "item must be at most %d bytes (got %zu)",
                    ORDERS_ITEM_MAX_BYTES, len);
    /* Only reachable with JSON_ALLOW_NUL; PostgreSQL text cannot hold NUL either. */
    if (memchr(s, '\0', len) != NULL)
        return fail(ORDERS_EITEM, errbuf, errlen, "item must not contain NUL");
    if (is_blank(s, len))
        return fail(ORDERS_EITEM, errbuf, errlen, "item must not be empty or only whitespace");
    memcpy(out->item, s, len);
    out->item[len] = '\0';
    out->item_len = len;
    return ORDERS_OK;
}

static enum orders_status check_quantity(json_t *v, struct order_request *out, char *errbuf,
                                         size_t errlen)
{
    json_int_t q;

    if (v == NULL)
        return fail(ORDERS_EQUANTITY, errbuf, errlen, "quantity is required");
    /* json_is_integer is false for reals (2.0, 1e2), booleans, strings and null. */
    if (!json_is_integer(v))
        return fail(ORDERS_EQUANTITY, errbuf, errlen, "quantity must be an integer");
    q = json_integer_value(v);
    if (q < ORDERS_QUANTITY_MIN || q > ORDERS_QUANTITY_MAX)
        return fail(ORDERS_EQUANTITY, errbuf, errlen, "quantity must be between %d and %d",
                    ORDERS_QUANTITY_MIN, ORDERS_QUANTITY_MAX);
    out->quantity = (int)q;
    return ORDERS_OK;
}

/* Rejects the first member that is not "item" or "quantity", naming it. */
static enum orders_status check_fields(json_t *obj, char *errbuf, size_t errlen)
{
    for (void *it = json_object_iter(obj); it != NULL; it = json_object_iter_next(obj, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);

        if ((klen == 4 && memcmp(key, "item", 4) == 0) ||
            (klen == 8 && memcmp(key, "quantity", 8) == 0))
            continue;
        if (klen > ORDERS_FIELD_ECHO_MAX)
            return fail(ORDERS_EUNKNOWNFIELD, errbuf, errlen, "unknown field \"%.*s...\"",
                        ORDERS_FIELD_ECHO_MAX, key);
        return fail(ORDERS_EUNKNOWNFIELD, errbuf, errlen, "unknown field \"%.*s\"", (int)klen, key);
    }
    return ORDERS_OK;
}

enum orders_status orders_parse_request(const char *body, size_t len, struct order_request *out,
                                        char *errbuf, size_t errlen)
{
    json_error_t jerr;
    json_t *root;
    enum orders_status st;

    if (errlen > 0)
        errbuf[0] = '\0';
    if (len == 0)
        return fail(ORDERS_EEMPTY, errbuf, errlen, "request body is empty");
    /*
     * DECODE_ANY so a scalar body gets our own message; ALLOW_NUL so "\u0000"
     * in the item gets a precise one; duplicates would make "which item?" ambiguous.
     */
    root = json_loadb(body, len, JSON_DECODE_ANY | JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (root == NULL)
        return fail(ORDERS_EJSON, errbuf, errlen, "invalid JSON at byte %d: %s", jerr.position,
                    jerr.text);
    if (!json_is_object(root)) {
        st = fail(ORDERS_ENOTOBJECT, errbuf, errlen, "body must be a JSON object");
        goto out;
    }
    st = check_fields(root, errbuf, errlen);
    if (st != ORDERS_OK)
        goto out;
    st = check_item(json_object_get(root, "item"), out, errbuf, errlen);
    if (st != ORDERS_OK)
        goto out;
    st = check_quantity(json_object_get(root, "quantity"), out, errbuf, errlen);
out:
    json_decref(root);
    return st;
}

static bool is_hex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool orders_id_valid(const char *s, size_t len)
{
    if (s == NULL || len != ORDERS_ID_LEN)
        return false;
    for (size_t i = 0; i < len; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            if (s[i] != '-')
                return false;
        } else if (!is_hex(s[i])) {
            return false;
        }
    }
    return true;
}

const char *orders_jansson_version(void)
{
    return jansson_version_str();
}
