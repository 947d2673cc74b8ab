/* fuzz-sources: api/orders.c */
/* fuzz-libs: jansson */
/*
 * libFuzzer target for the POST /orders body validator. Any input must end in
 * ORDERS_OK or an error with a printable message, never a crash, leak or UB.
 * Build: clang -g -fsanitize=fuzzer,address,undefined -I. -Icommon \
 *            tests/fuzz/fuzz_orders.c api/orders.c -ljansson
 * Replay without libFuzzer: add -DWITH_MAIN (no -fsanitize=fuzzer) and pass files.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/orders.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct order_request req;
    char err[ORDERS_ERR_MAX];
    enum orders_status st;

    /* An exact-size heap copy so ASan catches any read past the end. */
    char *body = malloc(size ? size : 1);

    if (body == NULL)
        return 0;
    if (size > 0)
        memcpy(body, data, size);
    st = orders_parse_request(body, size, &req, err, sizeof(err));
    if (st == ORDERS_OK) {
        /* The invariants the HTTP and SQL layers rely on. */
        if (req.item_len == 0 || req.item_len > ORDERS_ITEM_MAX_BYTES ||
            strlen(req.item) != req.item_len || req.quantity < ORDERS_QUANTITY_MIN ||
            req.quantity > ORDERS_QUANTITY_MAX)
            abort();
    } else {
        size_t n = strlen(err);

        if (n == 0)
            abort();
        for (size_t i = 0; i < n; i++) {
            if ((unsigned char)err[i] < 0x20 || (unsigned char)err[i] > 0x7e)
                abort();
        }
        if (strcmp(orders_strerror(st), "unknown error") == 0)
            abort();
    }
    /* Same bytes as an id candidate: must never read past size. */
    (void)orders_id_valid(body, size);
    free(body);
    return 0;
}

#ifdef WITH_MAIN
#include "replay_main.h"
#endif
