/* Tests of the gRPC frame reader and writer. */
#include "azf_test.h"
#include "azfunc/codec.h"

#include <stdlib.h>

/* Three frames: "hello", an empty message, 300 bytes of a pattern. */
static size_t build_stream(azf_buf *b)
{
    static uint8_t big[300];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    CHECK_INT(azf_frame_append(b, (const uint8_t *)"hello", 5), 0);
    CHECK_INT(azf_frame_append(b, NULL, 0), 0);
    CHECK_INT(azf_frame_append(b, big, sizeof big), 0);
    return 3;
}

typedef struct collected {
    size_t count;
    size_t lens[8];
    azf_buf all; /* every message's bytes, concatenated */
} collected;

/* Feeds data[0..len) and collects every complete message. Returns the first error or 0. */
static int feed_all(azf_frame_reader *r, const uint8_t *data, size_t len, collected *c)
{
    while (len) {
        size_t used = 0;
        int rc = azf_frame_reader_feed(r, data, len, &used);
        CHECK(used <= len);
        data += used;
        len -= used;
        if (rc < 0)
            return rc;
        if (rc == 1) {
            const uint8_t *m;
            size_t n;
            CHECK_INT(azf_frame_reader_message(r, &m, &n), 0);
            if (c->count < 8)
                c->lens[c->count] = n;
            c->count++;
            azf_buf_append(&c->all, m, n);
        } else {
            CHECK_INT(len, 0);
        }
    }
    return 0;
}

static void test_every_split(void)
{
    azf_buf s = AZF_BUF_INIT;
    build_stream(&s);
    const uint8_t *p = (const uint8_t *)s.ptr;
    azf_buf expect = AZF_BUF_INIT;
    azf_buf_append(&expect, p + 5, 5);
    azf_buf_append(&expect, p + 20, 300);
    /* Every single split point, and every pair of split points. */
    for (size_t i = 0; i <= s.size; i++) {
        for (size_t j = i; j <= s.size; j++) {
            azf_frame_reader *r;
            CHECK_INT(azf_frame_reader_new(&r, 0), 0);
            collected c = {0};
            CHECK_INT(feed_all(r, p, i, &c), 0);
            CHECK_INT(feed_all(r, p + i, j - i, &c), 0);
            CHECK_INT(feed_all(r, p + j, s.size - j, &c), 0);
            CHECK_INT(c.count, 3);
            CHECK_INT(c.lens[0], 5);
            CHECK_INT(c.lens[1], 0);
            CHECK_INT(c.lens[2], 300);
            CHECK_INT(c.all.size, expect.size);
            CHECK(c.all.size == expect.size && memcmp(c.all.ptr, expect.ptr, expect.size) == 0);
            CHECK_INT(azf_frame_reader_pending(r), 0);
            azf_buf_dispose(&c.all);
            azf_frame_reader_free(r);
        }
    }
    /* One byte at a time. */
    azf_frame_reader *r;
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    collected c = {0};
    for (size_t i = 0; i < s.size; i++)
        CHECK_INT(feed_all(r, p + i, 1, &c), 0);
    CHECK_INT(c.count, 3);
    CHECK(c.all.size == expect.size && memcmp(c.all.ptr, expect.ptr, expect.size) == 0);
    azf_buf_dispose(&c.all);
    azf_frame_reader_free(r);
    azf_buf_dispose(&expect);
    azf_buf_dispose(&s);
}

static void test_zero_copy(void)
{
    azf_buf s = AZF_BUF_INIT;
    build_stream(&s);
    azf_frame_reader *r;
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    size_t used;
    CHECK_INT(azf_frame_reader_feed(r, (const uint8_t *)s.ptr, s.size, &used), 1);
    CHECK_INT(used, 10);
    const uint8_t *m;
    size_t n;
    CHECK_INT(azf_frame_reader_message(r, &m, &n), 0);
    CHECK(m == (const uint8_t *)s.ptr + 5); /* points into the fed data */
    CHECK_INT(n, 5);
    azf_frame_reader_free(r);
    azf_buf_dispose(&s);
}

static void test_truncated(void)
{
    azf_buf s = AZF_BUF_INIT;
    build_stream(&s);
    /* Cut inside the header and inside the body of the last frame. */
    size_t cuts[] = {s.size - 303, s.size - 301, s.size - 1};
    for (size_t k = 0; k < 3; k++) {
        azf_frame_reader *r;
        CHECK_INT(azf_frame_reader_new(&r, 0), 0);
        collected c = {0};
        CHECK_INT(feed_all(r, (const uint8_t *)s.ptr, cuts[k], &c), 0);
        CHECK_INT(c.count, 2);
        CHECK_INT(azf_frame_reader_pending(r), cuts[k] - 15);
        const uint8_t *m;
        size_t n;
        CHECK_INT(azf_frame_reader_message(r, &m, &n), AZF_E_STATE);
        azf_buf_dispose(&c.all);
        azf_frame_reader_free(r);
    }
    azf_buf_dispose(&s);
}

static void test_over_limit(void)
{
    azf_frame_reader *r;
    CHECK_INT(azf_frame_reader_new(&r, 10), 0);
    uint8_t data[32] = {0};
    CHECK_INT(azf_frame_write_header(data, 10), 0);
    CHECK_INT(azf_frame_write_header(data + 15, 11), 0);
    collected c = {0};
    size_t used = 0;
    CHECK_INT(azf_frame_reader_feed(r, data, sizeof data, &used), 1);
    CHECK_INT(used, 15);
    /* The 11-byte message is refused right after its header: nothing past it is read. */
    CHECK_INT(azf_frame_reader_feed(r, data + 15, sizeof data - 15, &used), AZF_E_TOOBIG);
    CHECK_INT(used, 5);
    CHECK_INT(azf_frame_reader_pending(r), 5);
    CHECK(strstr(azf_frame_reader_errmsg(r), "11 bytes") != NULL);
    CHECK(strstr(azf_frame_reader_errmsg(r), "limit of 10") != NULL);
    /* Errors are sticky. */
    CHECK_INT(azf_frame_reader_feed(r, data, 5, &used), AZF_E_STATE);
    CHECK_INT(used, 0);
    azf_frame_reader_free(r);
    (void)c;

    /* A huge declared length is refused without allocating it. */
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    uint8_t h[5] = {0, 0xff, 0xff, 0xff, 0xff};
    CHECK_INT(azf_frame_reader_feed(r, h, 5, &used), AZF_E_TOOBIG);
    azf_frame_reader_free(r);
}

static void test_bad_flags(void)
{
    uint8_t compressed[6] = {1, 0, 0, 0, 1, 'x'};
    uint8_t bad[6] = {2, 0, 0, 0, 1, 'x'};
    azf_frame_reader *r;
    size_t used;
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    /* Split inside the header: the error comes when the header is complete. */
    CHECK_INT(azf_frame_reader_feed(r, compressed, 3, &used), 0);
    CHECK_INT(azf_frame_reader_feed(r, compressed + 3, 3, &used), AZF_E_UNSUPPORTED);
    CHECK_INT(used, 2);
    CHECK(strstr(azf_frame_reader_errmsg(r), "compressed") != NULL);
    CHECK_INT(azf_frame_reader_feed(r, compressed, 6, &used), AZF_E_STATE);
    azf_frame_reader_free(r);

    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    CHECK_INT(azf_frame_reader_feed(r, bad, 6, &used), AZF_E_PARSE);
    CHECK_INT(used, 5);
    CHECK(strstr(azf_frame_reader_errmsg(r), "0x02") != NULL);
    CHECK_INT(azf_frame_reader_feed(r, bad, 6, &used), AZF_E_STATE);
    azf_frame_reader_free(r);
}

static int g_allocs;
static size_t g_largest;
static void *count_malloc(size_t n, void *ud)
{
    (void)ud;
    g_allocs++;
    g_largest = n > g_largest ? n : g_largest;
    return malloc(n);
}
static void count_free(void *p, void *ud)
{
    (void)ud;
    free(p);
}
static void *count_calloc(size_t n, size_t s, void *ud)
{
    (void)ud;
    g_allocs++;
    return calloc(n, s);
}
static void *count_realloc(void *p, size_t s, void *ud)
{
    (void)ud;
    g_allocs++;
    g_largest = s > g_largest ? s : g_largest;
    return realloc(p, s);
}

/* A message split over many feeds: reserved at once up to 1 MiB, then doubled
 * up to exactly its length. */
static void check_buffered_allocs(size_t len, size_t piece, int expect_allocs)
{
    azf_mem mem = {NULL, count_malloc, count_free, count_calloc, count_realloc};
    CHECK_INT(azf_set_allocator(&mem), 0);
    uint8_t *data = calloc(1, len + 5);
    azf_frame_write_header(data, len);
    data[len + 4] = 0x5a;
    azf_frame_reader *r;
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    g_allocs = 0;
    size_t used;
    int rc = 0;
    for (size_t pos = 0; pos < len + 5; pos += piece)
        rc = azf_frame_reader_feed(r, data + pos, piece < len + 5 - pos ? piece : len + 5 - pos,
                                   &used);
    CHECK_INT(rc, 1);
    CHECK_INT(g_allocs, expect_allocs);
    const uint8_t *m;
    size_t n;
    CHECK_INT(azf_frame_reader_message(r, &m, &n), 0);
    CHECK_INT(n, len);
    CHECK(n == len && m[len - 1] == 0x5a);
    azf_frame_reader_free(r);
    free(data);
    CHECK_INT(azf_set_allocator(NULL), 0);
}

static void test_buffered_allocations(void)
{
    check_buffered_allocs(100000, 1000, 1);
    check_buffered_allocs(3u << 20, 65536, 3); /* 1 MiB, 2 MiB, then exactly 3 MiB */

    /* A header announcing 2 GiB followed by 10 bytes costs 1 MiB, not 2 GiB. */
    azf_mem mem = {NULL, count_malloc, count_free, count_calloc, count_realloc};
    CHECK_INT(azf_set_allocator(&mem), 0);
    azf_frame_reader *r;
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    uint8_t data[15] = {0};
    azf_frame_write_header(data, AZF_FRAME_MAX_LENGTH);
    size_t used;
    g_largest = 0;
    CHECK_INT(azf_frame_reader_feed(r, data, sizeof data, &used), 0);
    CHECK_INT(used, sizeof data);
    CHECK_INT(azf_frame_reader_pending(r), sizeof data);
    CHECK(g_largest <= (1u << 20) + 1);
    azf_frame_reader_free(r);
    CHECK_INT(azf_set_allocator(NULL), 0);
}

static void test_writer_and_args(void)
{
    uint8_t h[5];
    CHECK_INT(azf_frame_write_header(h, 0x01020304), 0);
    CHECK(h[0] == 0 && h[1] == 1 && h[2] == 2 && h[3] == 3 && h[4] == 4);
    CHECK_INT(azf_frame_write_header(h, (size_t)AZF_FRAME_MAX_LENGTH + 1), AZF_E_TOOBIG);
    CHECK_INT(azf_frame_append(NULL, h, 1), AZF_E_INVALID);
    azf_frame_reader *r = NULL;
    CHECK_INT(azf_frame_reader_new(NULL, 0), AZF_E_INVALID);
    CHECK_INT(azf_frame_reader_new(&r, 0), 0);
    size_t used;
    CHECK_INT(azf_frame_reader_feed(r, NULL, 1, &used), AZF_E_INVALID);
    CHECK_INT(azf_frame_reader_feed(r, NULL, 0, &used), 0);
    CHECK_STR(azf_frame_reader_errmsg(r), "");
    azf_frame_reader_free(r);
    azf_frame_reader_free(NULL);
}

int main(void)
{
    RUN(test_every_split());
    RUN(test_zero_copy());
    RUN(test_truncated());
    RUN(test_over_limit());
    RUN(test_bad_flags());
    RUN(test_buffered_allocations());
    RUN(test_writer_and_args());
    TEST_MAIN_END();
}
