/* fuzz-sources: cdc/reemit.c cdc/poll_sql.c common/xmem.c */
/* fuzz-libs: jansson */
/*
 * libFuzzer target for the re-emit request the relay decodes from the WAL
 * (reemit_request_parse): any content of a message with the request's
 * prefix (which anyone allowed to call pg_logical_emit_message can write)
 * must end in a request or an error, never a crash, a read past the end or
 * UB; a parsed request keeps its invariants (bounds NUL-terminated and
 * non-empty, a non-empty time range) and formats back to a request that
 * parses to the same values.
 * Build: clang -g -fsanitize=fuzzer,address,undefined -I. -Icommon \
 *            tests/fuzz/fuzz_reemit_request.c cdc/reemit.c cdc/poll_sql.c \
 *            common/xmem.c -ljansson
 * Replay without libFuzzer: add -DWITH_MAIN (no -fsanitize=fuzzer) and pass files.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cdc/reemit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size heap copy so ASan catches any read past the end. */
    uint8_t *copy = malloc(size ? size : 1);
    struct reemit_request req, again;
    const char *why = NULL;
    char *json;

    if (copy == NULL)
        abort();
    if (size > 0)
        memcpy(copy, data, size);
    if (!reemit_request_parse(copy, size, &req, &why)) {
        if (why == NULL || req.snapshot != NULL)
            abort();
        free(copy);
        return 0;
    }
    if (req.slot[0] == '\0' || req.snapshot == NULL ||
        (req.kind == REEMIT_IDS && (req.first_id[0] == '\0' || req.last_id[0] == '\0')) ||
        (req.kind == REEMIT_TIME && req.until_us <= req.since_us))
        abort();
    json = reemit_request_format(&req);
    if (json == NULL || !reemit_request_parse((const uint8_t *)json, strlen(json), &again, &why) ||
        again.kind != req.kind || strcmp(again.slot, req.slot) != 0 ||
        strcmp(again.snapshot, req.snapshot) != 0 ||
        (req.kind == REEMIT_IDS &&
         (strcmp(again.first_id, req.first_id) != 0 || strcmp(again.last_id, req.last_id) != 0)) ||
        (req.kind == REEMIT_TIME &&
         (again.since_us != req.since_us || again.until_us != req.until_us)))
        abort();
    reemit_request_free(&again);
    reemit_request_free(&req);
    free(json);
    free(copy);
    return 0;
}

#ifdef WITH_MAIN
#include "replay_main.h"
#endif
