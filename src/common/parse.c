/* Small parsers every layer shares, so a number or a switch reads the same way
 * everywhere. */
#include "common_internal.h"

#include <ctype.h>
#include <math.h>
#include <string.h>
#include <strings.h>

int azf__double_to_i64(double d, int64_t lo, int64_t hi, int64_t *out)
{
    if (!isfinite(d))
        return -1;
    /* Compared as doubles before the conversion: converting an out-of-range double to
     * an integer is undefined behaviour. 2^63 is exact as a double, INT64_MAX is not;
     * every double this large is a whole number. */
    if (d < -9223372036854775808.0 || d >= 9223372036854775808.0)
        return -2;
    int64_t v = (int64_t)d;
    if ((double)v != d)
        return -1;
    if (v < lo || v > hi)
        return -2;
    *out = v;
    return 0;
}

int azf__parse_bool(const char *s)
{
    static const char *const yes[] = {"1", "true", "t", "yes", "y"};
    static const char *const no[] = {"0", "false", "f", "no", "n"};
    if (!s)
        return -1;
    while (isspace((unsigned char)*s))
        s++;
    size_t n = strlen(s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        if (strlen(yes[i]) == n && strncasecmp(s, yes[i], n) == 0)
            return 1;
        if (strlen(no[i]) == n && strncasecmp(s, no[i], n) == 0)
            return 0;
    }
    return -1;
}
