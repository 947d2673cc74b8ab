/* fuzz-sources: api/traceparent.c cdc/outbox.c cdc/relcache.c common/xmem.c */
/*
 * libFuzzer target for the column values the relay and the api parse from
 * bytes they did not write: bytea's text output (outbox_bytea_decode), a
 * trace context column (outbox_traceparent_extract) and the traceparent
 * request header (traceparent_parse). Any input must end in a result or an
 * error, never a crash, a read past the end, or UB; results keep their
 * invariants (decoded bytes fit, a parsed traceparent re-parses to itself).
 * Build: clang -g -fsanitize=fuzzer,address,undefined -I. -Icommon \
 *            tests/fuzz/fuzz_outbox_values.c api/traceparent.c cdc/outbox.c \
 *            cdc/relcache.c common/xmem.c
 * Replay without libFuzzer: add -DWITH_MAIN (no -fsanitize=fuzzer) and pass files.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "api/traceparent.h"
#include "cdc/outbox.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Exact-size heap copies so ASan catches any read past the end. */
    char *text = malloc(size ? size : 1);
    uint8_t *out = malloc(size ? size : 1);
    char tp[TRACEPARENT_LEN + 1], again[TRACEPARENT_LEN + 1];
    struct pgout_str v;
    long n;

    if (text == NULL || out == NULL)
        abort();
    if (size > 0)
        memcpy(text, data, size);
    n = outbox_bytea_decode(text, size, out);
    if (n > (long)size || n < -1)
        abort();
    v = outbox_traceparent_extract((struct pgout_str){text, size});
    if (v.ptr != NULL && (v.ptr < text || v.ptr + v.len > text + size || v.len == 0))
        abort();
    if (traceparent_parse(text, size, tp)) {
        if (strlen(tp) != TRACEPARENT_LEN || !traceparent_parse(tp, TRACEPARENT_LEN, again) ||
            strcmp(tp, again) != 0)
            abort();
    }
    free(out);
    free(text);
    return 0;
}

#ifdef WITH_MAIN
#include "replay_main.h"
#endif
