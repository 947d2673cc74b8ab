/*
 * Idempotency-Key syntax and request hash (see idem.h). The hash input format
 * is stored in the database with every key: changing it makes retries of
 * requests sent before the change look like different requests (422).
 */
#include "idem.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "sha256.h"

bool idem_key_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
            return false;
    }
    return true;
}

void idem_request_hash(const struct order_request *req, char out[IDEM_HASH_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    /* item, NUL, an int in decimal: the item holds no NUL, so this is unambiguous. */
    char buf[ORDERS_ITEM_MAX_BYTES + 1 + 16];
    uint8_t digest[SHA256_DIGEST_LEN];
    size_t n = req->item_len;
    int q;

    /* item_len never exceeds the limit after orders_parse_request; stay in bounds anyway. */
    if (n > ORDERS_ITEM_MAX_BYTES)
        n = ORDERS_ITEM_MAX_BYTES;
    memcpy(buf, req->item, n);
    buf[n++] = '\0';
    q = snprintf(buf + n, sizeof(buf) - n, "%d", req->quantity);
    if (q > 0)
        n += (size_t)q;
    sha256_digest(buf, n, digest);
    for (size_t i = 0; i < SHA256_DIGEST_LEN; i++) {
        out[2 * i] = hex[digest[i] >> 4];
        out[2 * i + 1] = hex[digest[i] & 0x0f];
    }
    out[IDEM_HASH_HEX_LEN] = '\0';
}
