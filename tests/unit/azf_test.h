/* A minimal test harness: each test file is one ctest program.
 * CHECK records a failure and goes on; the program exits non-zero if any failed.
 * RUN(test_x()) runs one test; with AZF_TEST_FILTER=text in the environment only the
 * tests whose call text contains it run, e.g.
 *   AZF_TEST_FILTER=test_buf ctest --test-dir build -R unit.test_common -V */
#ifndef AZF_TEST_H
#define AZF_TEST_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Atomic: tests may CHECK from the threads they start (TSan stage). */
static _Atomic int azf_test_failures;
static _Atomic int azf_test_checks;

#define CHECK(cond)                                                                                \
    do {                                                                                           \
        azf_test_checks++;                                                                         \
        if (!(cond)) {                                                                             \
            azf_test_failures++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);               \
        }                                                                                          \
    } while (0)

#define CHECK_INT(a, b)                                                                            \
    do {                                                                                           \
        long long azf_a_ = (long long)(a), azf_b_ = (long long)(b);                                \
        azf_test_checks++;                                                                         \
        if (azf_a_ != azf_b_) {                                                                    \
            azf_test_failures++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK_INT failed: %s == %lld, expected %s == %lld\n",          \
                    __FILE__, __LINE__, #a, azf_a_, #b, azf_b_);                                   \
        }                                                                                          \
    } while (0)

#define CHECK_STR(a, b)                                                                            \
    do {                                                                                           \
        const char *azf_a_ = (a), *azf_b_ = (b);                                                   \
        azf_test_checks++;                                                                         \
        if (!azf_a_ || !azf_b_ || strcmp(azf_a_, azf_b_) != 0) {                                   \
            azf_test_failures++;                                                                   \
            fprintf(stderr, "%s:%d: CHECK_STR failed: %s = \"%s\", expected \"%s\"\n", __FILE__,   \
                    __LINE__, #a, azf_a_ ? azf_a_ : "(null)", azf_b_ ? azf_b_ : "(null)");         \
        }                                                                                          \
    } while (0)

static int azf_test_ran;

/* 1 when the test named by `call` passes AZF_TEST_FILTER (or there is no filter). */
static inline int azf_test_selected(const char *call)
{
    const char *f = getenv("AZF_TEST_FILTER");
    return !f || !*f || strstr(call, f) != NULL;
}

#define RUN(call)                                                                                  \
    do {                                                                                           \
        if (azf_test_selected(#call)) {                                                            \
            azf_test_ran++;                                                                        \
            call;                                                                                  \
        }                                                                                          \
    } while (0)

/* With a filter, running no test is a failure (a misspelt name must not pass). */
#define TEST_MAIN_END()                                                                            \
    do {                                                                                           \
        const char *azf_f_ = getenv("AZF_TEST_FILTER");                                            \
        printf("%d checks, %d failed\n", azf_test_checks, azf_test_failures);                      \
        if (azf_f_ && *azf_f_ && !azf_test_ran) {                                                  \
            fprintf(stderr, "no test matches AZF_TEST_FILTER=%s\n", azf_f_);                       \
            return 1;                                                                              \
        }                                                                                          \
        return azf_test_failures ? 1 : 0;                                                          \
    } while (0)

#endif
