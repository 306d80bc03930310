/* W3C Trace Context (https://www.w3.org/TR/trace-context/ §3.2): parse an incoming
 * traceparent, make the runner's own span. */
#include "host/trace_context.h"

#include <stdio.h>
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

static void random_hex(char *out, size_t bytes)
{
    unsigned char b[16];
    int any = 0;
    while (!any) {
        if (getrandom(b, bytes, 0) != (ssize_t)bytes)
            for (size_t i = 0; i < bytes; i++)
                b[i] = (unsigned char)rand();
        for (size_t i = 0; i < bytes; i++)
            any |= b[i];
    }
    for (size_t i = 0; i < bytes; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
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
    snprintf(out, AZF__TRACE_PARENT_LEN + 1, "00-%s-%s-%s", trace, span, flags);
    return cont;
}
