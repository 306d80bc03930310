/* W3C Trace Context (https://www.w3.org/TR/trace-context/ §3.2): parse an incoming
 * traceparent, make the runner's own span; the random bytes of the runner's ids. */
#include "host/trace_context.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static int lower_hex(const char *s, size_t n, int nonzero)
{
    int any = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
        any |= c != '0';
    }
    return !nonzero || any;
}

/* version "-" trace-id "-" parent-id "-" flags; a later version may append fields
 * after a '-', version ff is invalid. */
static int valid(const char *tp)
{
    size_t n = tp ? strlen(tp) : 0;
    if (n < AZF__TRACE_PARENT_LEN || tp[2] != '-' || tp[35] != '-' || tp[52] != '-')
        return 0;
    if (!lower_hex(tp, 2, 0) || !strncmp(tp, "ff", 2))
        return 0;
    if (!strncmp(tp, "00", 2) ? n != AZF__TRACE_PARENT_LEN
                              : n > AZF__TRACE_PARENT_LEN && tp[AZF__TRACE_PARENT_LEN] != '-')
        return 0;
    return lower_hex(tp + 3, 32, 1) && lower_hex(tp + 36, 16, 1) && lower_hex(tp + 53, 2, 0);
}

/* Random bytes come from getrandom, read RANDOM_BATCH bytes at a time per thread: a
 * request takes 40 (an invocation id, a trace id and a span id), so this is one system
 * call per hundred requests instead of two per request. A child process of fork()
 * never reuses its parent's bytes (fork_generation). */
#define RANDOM_BATCH 4096

static atomic_uint fork_generation;
static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;

static void after_fork_in_child(void)
{
    atomic_fetch_add(&fork_generation, 1);
}

static void register_atfork(void)
{
    pthread_atfork(NULL, NULL, after_fork_in_child);
}

void azf__random_bytes(void *out, size_t n)
{
    static _Thread_local unsigned char pool[RANDOM_BATCH];
    static _Thread_local size_t left;
    static _Thread_local unsigned generation;
    pthread_once(&atfork_once, register_atfork);
    unsigned gen = atomic_load(&fork_generation);
    if (gen != generation)
        left = 0, generation = gen;
    unsigned char *o = out;
    while (n > 0) {
        if (left == 0) {
            if (getrandom(pool, sizeof pool, 0) != (ssize_t)sizeof pool)
                for (size_t i = 0; i < sizeof pool; i++)
                    pool[i] = (unsigned char)rand();
            left = sizeof pool;
        }
        size_t k = n < left ? n : left;
        memcpy(o, pool + sizeof pool - left, k);
        left -= k, o += k, n -= k;
    }
}

void azf__hex(char *out, const unsigned char *bytes, size_t n)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[bytes[i] >> 4];
        out[2 * i + 1] = digits[bytes[i] & 15];
    }
    out[2 * n] = '\0';
}

/* A random id of `bytes` bytes (not all zero, as W3C requires) in lower-case hex. */
static void random_hex(char *out, size_t bytes)
{
    unsigned char b[16];
    int any = 0;
    while (!any) {
        azf__random_bytes(b, bytes);
        for (size_t i = 0; i < bytes; i++)
            any |= b[i];
    }
    azf__hex(out, b, bytes);
}

int azf__trace_parent_new(const char *incoming, char out[AZF__TRACE_PARENT_LEN + 1])
{
    char trace[33], span[17], flags[3] = "01";
    int cont = valid(incoming);
    if (cont) {
        memcpy(trace, incoming + 3, 32);
        trace[32] = '\0';
        memcpy(flags, incoming + 53, 2);
    } else {
        random_hex(trace, 16);
    }
    random_hex(span, 8);
    /* "00-" trace "-" span "-" flags */
    memcpy(out, "00-", 3);
    memcpy(out + 3, trace, 32);
    out[35] = '-';
    memcpy(out + 36, span, 16);
    out[52] = '-';
    memcpy(out + 53, flags, 2);
    out[AZF__TRACE_PARENT_LEN] = '\0';
    return cont;
}
