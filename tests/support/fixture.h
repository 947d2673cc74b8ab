/*
 * Test-only reader of the captured pgoutput streams in tests/fixtures
 * (tests/fixtures/pgoutput/README.md): one message per "<lsn> <hex>" line,
 * '#' comments. Shared by the decoder's tests and the stream loop's.
 */
#ifndef ORDERS_TESTS_FIXTURE_H
#define ORDERS_TESTS_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct fixture_msg {
    uint64_t lsn; /* the XLogData write position the walsender would send */
    uint8_t *data;
    size_t len;
    bool streamed; /* between a Stream Start ('S') and its Stop ('E') */
};

struct fixture {
    struct fixture_msg *msgs;
    size_t n;
};

/* $FIXTURES_DIR, else "tests/fixtures" (tests run from the repository root). */
const char *fixture_dir(void);

/* Loads <fixture_dir>/<name>. Returns false, with the reason on stderr and
 * *fx empty, when the file is missing, malformed or has no message; free
 * with fixture_free either way. */
bool fixture_load(const char *name, struct fixture *fx);
void fixture_free(struct fixture *fx);

#endif
