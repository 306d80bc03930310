/* Tests of the common layer: errors, azf_buf, allocator hooks, version, global init. */
#include "azf_test.h"
#include "common/common_internal.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

static int g_allocs, g_frees, g_fail_at;

static void *count_malloc(size_t n, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_allocs == g_fail_at)
        return NULL;
    return malloc(n);
}
static void count_free(void *p, void *ud)
{
    (void)ud;
    g_frees++;
    free(p);
}
static void *count_calloc(size_t n, size_t s, void *ud)
{
    (void)ud;
    return calloc(n, s);
}
static void *count_realloc(void *p, size_t s, void *ud)
{
    (void)ud;
    return realloc(p, s);
}

static void test_errors(void)
{
    CHECK_STR(azf_strerror(AZF_OK), "success");
    CHECK_STR(azf_strerror(AZF_E_TOOBIG), "message over the size limit");
    CHECK_STR(azf_strerror(12345), "unknown error");
    /* Every code from -1 to the last has its own text. */
    for (int c = AZF_E_NOMEM; c >= AZF_E_NOTREADY; c--)
        CHECK(strcmp(azf_strerror(c), "unknown error") != 0);
    CHECK(azf_is_fatal(AZF_E_NOMEM));
    CHECK(!azf_is_fatal(AZF_E_PARSE));
}

static void test_buf(void)
{
    azf_buf b = AZF_BUF_INIT;
    CHECK_INT(azf_buf_set(&b, "hello", 5), 0);
    CHECK_STR(b.ptr, "hello");
    CHECK_INT(b.size, 5);
    for (int i = 0; i < 1000; i++)
        CHECK_INT(azf_buf_append(&b, "x", 1), 0);
    CHECK_INT(b.size, 1005);
    CHECK(b.ptr[b.size] == '\0');
    CHECK_INT(azf_buf_set(&b, "", 0), 0);
    CHECK_INT(b.size, 0);
    CHECK_STR(b.ptr, "");
    azf_buf_dispose(&b);
    CHECK(b.ptr == NULL && b.size == 0 && b.reserved == 0);
    azf_buf_dispose(NULL);
    CHECK_INT(azf_buf_append(NULL, "x", 1), AZF_E_INVALID);
    CHECK_INT(azf_buf_append(&b, NULL, 3), AZF_E_INVALID);

    /* A borrowed buffer is copied before it is written to. */
    char text[] = "abc";
    azf_buf borrowed = {text, 3, 0};
    CHECK_INT(azf_buf_append(&borrowed, "d", 1), 0);
    CHECK_STR(borrowed.ptr, "abcd");
    CHECK_STR(text, "abc");
    azf_buf_dispose(&borrowed);
}

static void test_allocator(void)
{
    azf_mem bad = {NULL, count_malloc, NULL, count_calloc, count_realloc};
    CHECK_INT(azf_set_allocator(&bad), AZF_E_INVALID);
    azf_mem m = {NULL, count_malloc, count_free, count_calloc, count_realloc};
    CHECK_INT(azf_set_allocator(&m), 0);
    char *s = azf__strdup("abc");
    CHECK_STR(s, "abc");
    azf__free(s);
    CHECK_INT(g_frees, 1);
    /* A failing allocation gives AZF_E_NOMEM and leaves the buffer as it was. */
    g_allocs = 0;
    g_fail_at = 1;
    azf_buf b = AZF_BUF_INIT;
    CHECK_INT(azf_buf_set(&b, "x", 1), AZF_E_NOMEM);
    CHECK(b.ptr == NULL);
    g_fail_at = 0;
    /* The allocator cannot change while the library is initialised. */
    CHECK(azf_global_init() > 0);
    CHECK_INT(azf_set_allocator(NULL), AZF_E_STATE);
    azf_global_shutdown();
    CHECK_INT(azf_set_allocator(NULL), 0);
}

static void test_version_and_init(void)
{
    CHECK_STR(azf_version(), AZF_VERSION_STRING);
    CHECK_INT(azf_version_num(), AZF_VERSION_NUM);
    CHECK_INT(azf_global_init(), 1);
    CHECK_INT(azf_global_init(), 2);
    CHECK_INT(azf_global_shutdown(), 1);
    CHECK_INT(azf_global_shutdown(), 0);
    CHECK_INT(azf_global_shutdown(), AZF_E_NOTREADY);
}

static int g_logged;
static void test_parsers(void)
{
    static const struct {
        const char *s;
        int v;
    } bools[] = {{"1", 1},   {"true", 1},  {" TRUE\n", 1}, {"t", 1},  {"Yes", 1},  {"y", 1},
                 {"0", 0},   {"false", 0}, {"F", 0},       {"no", 0}, {" n ", 0},  {"", -1},
                 {"on", -1}, {"off", -1},  {"truee", -1},  {"2", -1}, {"yess", -1}};
    for (size_t i = 0; i < sizeof bools / sizeof bools[0]; i++)
        CHECK_INT(azf__parse_bool(bools[i].s), bools[i].v);
    CHECK_INT(azf__parse_bool(NULL), -1);

    /* Doubles to integers: checked as doubles first (no undefined conversion). */
    int64_t v = 42;
    CHECK_INT(azf__double_to_i64(5.0, -1, 10, &v), 0);
    CHECK_INT(v, 5);
    CHECK_INT(azf__double_to_i64(-1.0, -1, 10, &v), 0);
    CHECK_INT(v, -1);
    CHECK_INT(azf__double_to_i64(1.5, -1, 10, &v), -1);
    CHECK_INT(azf__double_to_i64(NAN, -1, 10, &v), -1);
    CHECK_INT(azf__double_to_i64(INFINITY, INT64_MIN, INT64_MAX, &v), -1);
    CHECK_INT(azf__double_to_i64(-INFINITY, INT64_MIN, INT64_MAX, &v), -1);
    CHECK_INT(azf__double_to_i64(11.0, -1, 10, &v), -2);
    CHECK_INT(azf__double_to_i64(5.7e68, INT64_MIN, INT64_MAX, &v), -2);
    CHECK_INT(azf__double_to_i64(1e19, INT64_MIN, INT64_MAX, &v), -2);
    CHECK_INT(azf__double_to_i64(-1e300, INT64_MIN, INT64_MAX, &v), -2);
    CHECK_INT(azf__double_to_i64(9223372036854775808.0, INT64_MIN, INT64_MAX, &v), -2);
    CHECK_INT(azf__double_to_i64(-9223372036854775808.0, INT64_MIN, INT64_MAX, &v), 0);
    CHECK(v == INT64_MIN);
    CHECK_INT(azf__double_to_i64(DBL_MAX, INT64_MIN, INT64_MAX, &v), -2);
}

static void on_log(int level, const char *msg, void *ud)
{
    (void)ud;
    if (level == AZF_LOG_WARNING && strcmp(msg, "value 42") == 0)
        g_logged++;
}

static void test_log_and_errmsg(void)
{
    azf_set_log_callback(on_log, NULL);
    azf__log(AZF_LOG_WARNING, "value %d", 42);
    azf_set_log_callback(NULL, NULL);
    azf__log(AZF_LOG_WARNING, "value %d", 42);
    CHECK_INT(g_logged, 1);

    azf__errmsg e;
    CHECK_INT(azf__err(&e, AZF_E_PARSE, "bad byte at %d", 7), AZF_E_PARSE);
    CHECK_STR(e.text, "bad byte at 7");
    azf__err_clear(&e);
    CHECK_STR(e.text, "");
}

int main(void)
{
    RUN(test_errors());
    RUN(test_buf());
    RUN(test_allocator());
    RUN(test_version_and_init());
    RUN(test_log_and_errmsg());
    RUN(test_parsers());
    TEST_MAIN_END();
}
