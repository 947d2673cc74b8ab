/*
 * Unit-test macros. A test is a `static void test_x(void)` run by RUN(test_x)
 * from main; inside it, every CHECK* that fails prints file:line and what it
 * compared, and the test goes on (so one run shows every failure). Each RUN
 * prints a TAP line ("ok 3 - test_x" / "not ok 3 - test_x"); check_summary()
 * prints the plan and "# N passed, N failed; N checks" (tests, then
 * assertions) and returns the exit code. tests/run_unit.sh adds the binaries
 * up. Header-only, so each test binary stays standalone.
 *
 * Environment: CHECK_FILTER=a,b runs only the tests whose "file:test" name
 * (e.g. "test_tracker:test_in_order_acks") contains one of the substrings;
 * CHECK_LIST=1 prints those names instead of running them.
 *
 * A CHECK outside any RUN (a test function called directly from main) still
 * counts: check_summary() reports those checks as one more test named
 * "main", so nothing is lost, only unnamed and unfilterable.
 */
#ifndef ORDERS_TESTS_CHECK_H
#define ORDERS_TESTS_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Assertions; tests may count their own checks with check_passed++ and
 * check_failed++ (after printing a FAIL line). */
static int check_passed;
static int check_failed;

static struct {
    const char *current; /* running test, NULL outside RUN */
    int ran, tests_failed;
    int in_tests_passed, in_tests_failed; /* assertions made inside RUN */
} check_state;

#define CHECK_FAIL_AT(file, line, ...)                                                             \
    do {                                                                                           \
        check_failed++;                                                                            \
        fprintf(stderr, "FAIL %s:%d: %s: ", (file), (line),                                        \
                check_state.current ? check_state.current : "main");                               \
        fprintf(stderr, __VA_ARGS__);                                                              \
        fputc('\n', stderr);                                                                       \
    } while (0)

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        if (cond)                                                                                  \
            check_passed++;                                                                        \
        else                                                                                       \
            CHECK_FAIL_AT(__FILE__, __LINE__, "%s", #cond);                                        \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                                         \
    do {                                                                                           \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                            \
        if (check_a_ == check_b_)                                                                  \
            check_passed++;                                                                        \
        else                                                                                       \
            CHECK_FAIL_AT(__FILE__, __LINE__, "%s == %s (%lld != %lld)", #a, #b, check_a_,         \
                          check_b_);                                                               \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                         \
    do {                                                                                           \
        uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);                               \
        if (check_a_ == check_b_)                                                                  \
            check_passed++;                                                                        \
        else                                                                                       \
            CHECK_FAIL_AT(__FILE__, __LINE__, "%s == %s (%" PRIu64 " != %" PRIu64 ")", #a, #b,     \
                          check_a_, check_b_);                                                     \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *check_a_ = (a), *check_b_ = (b);                                               \
        if (check_a_ != NULL && check_b_ != NULL && strcmp(check_a_, check_b_) == 0)               \
            check_passed++;                                                                        \
        else                                                                                       \
            CHECK_FAIL_AT(__FILE__, __LINE__, "%s == %s (\"%s\" != \"%s\")", #a, #b,               \
                          check_a_ ? check_a_ : "(null)", check_b_ ? check_b_ : "(null)");         \
    } while (0)

/* Compares a (ptr, len) view with a C string. */
#define CHECK_VIEW(ptr, len, s)                                                                    \
    do {                                                                                           \
        const char *check_s_ = (s);                                                                \
        size_t check_n_ = strlen(check_s_);                                                        \
        if ((size_t)(len) == check_n_ && memcmp((ptr), check_s_, check_n_) == 0)                   \
            check_passed++;                                                                        \
        else                                                                                       \
            CHECK_FAIL_AT(__FILE__, __LINE__, "%s == \"%s\" (\"%.*s\")", #ptr, check_s_,           \
                          (int)(len), (const char *)(ptr));                                        \
    } while (0)

/* "tests/unit/test_x.c" -> "test_x", the binary's name. */
static inline void check_file_stem(const char *file, char *out, size_t outlen)
{
    const char *base = strrchr(file, '/');
    size_t n;

    base = base != NULL ? base + 1 : file;
    n = strcspn(base, ".");
    if (n >= outlen)
        n = outlen - 1;
    memcpy(out, base, n);
    out[n] = '\0';
}

/* Whether "file:name" matches CHECK_FILTER (unset or empty: everything). */
static inline int check_selected(const char *full)
{
    const char *filter = getenv("CHECK_FILTER");
    char pat[256];

    if (filter == NULL || *filter == '\0')
        return 1;
    while (*filter != '\0') {
        size_t n = strcspn(filter, ",");

        if (n > 0 && n < sizeof(pat)) {
            memcpy(pat, filter, n);
            pat[n] = '\0';
            if (strstr(full, pat) != NULL)
                return 1;
        }
        filter += n;
        if (*filter == ',')
            filter++;
    }
    return 0;
}

static inline void check_run_(const char *file, const char *name, void (*fn)(void))
{
    char full[256], stem[128];
    int passed0 = check_passed, failed0 = check_failed;
    const char *list = getenv("CHECK_LIST");

    check_file_stem(file, stem, sizeof(stem));
    snprintf(full, sizeof(full), "%s:%s", stem, name);
    if (!check_selected(full))
        return;
    if (list != NULL && *list != '\0' && strcmp(list, "0") != 0) {
        printf("%s\n", full);
        return;
    }
    check_state.current = name;
    fflush(stdout); /* TAP lines stay in order with what the test prints */
    fn();
    check_state.current = NULL;
    check_state.ran++;
    check_state.in_tests_passed += check_passed - passed0;
    check_state.in_tests_failed += check_failed - failed0;
    if (check_failed != failed0)
        check_state.tests_failed++;
    printf("%sok %d - %s\n", check_failed != failed0 ? "not " : "", check_state.ran, name);
    fflush(stdout);
}
#define RUN(fn) check_run_(__FILE__, #fn, fn)

/* Ends main: prints the plan and the counts, returns the exit status. */
static inline int check_summary(void)
{
    int out_passed = check_passed - check_state.in_tests_passed;
    int out_failed = check_failed - check_state.in_tests_failed;
    int tests = check_state.ran, failed = check_state.tests_failed;

    if (out_passed + out_failed > 0) {
        tests++;
        if (out_failed > 0)
            failed++;
        printf("%sok %d - main (checks outside RUN)\n", out_failed > 0 ? "not " : "", tests);
    }
    printf("1..%d\n# %d passed, %d failed; %d checks\n", tests, tests - failed, failed,
           check_passed + check_failed);
    return failed == 0 ? 0 : 1;
}

#endif
