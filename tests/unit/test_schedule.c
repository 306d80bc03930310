/* NCRONTAB and TimeSpan schedules (src/host/schedule.c). */
#include "azf_test.h"
#include "host/schedule.h"

#include <stdlib.h>

/* 2026-01-01T00:00:00Z, a Thursday. */
#define T0 ((time_t)1767225600)

static time_t next_utc(const char *expr, time_t after)
{
    azf__schedule s;
    azf__errmsg e;
    if (azf__schedule_parse(&s, expr, &e) != 0) {
        fprintf(stderr, "parse failed: %s\n", e.text);
        return (time_t)-1;
    }
    time_t n = 0;
    if (azf__schedule_next(&s, after, 0, &n) != 0)
        return (time_t)-2;
    return n;
}

static void expect_error(const char *expr, const char *fragment)
{
    azf__schedule s;
    azf__errmsg e = {{0}};
    int rc = azf__schedule_parse(&s, expr, &e);
    CHECK_INT(rc, AZF_E_PARSE);
    if (!strstr(e.text, fragment)) {
        fprintf(stderr, "message for '%s' was '%s', expected it to contain '%s'\n", expr, e.text,
                fragment);
        CHECK(0);
    }
}

static void test_cron(void)
{
    CHECK_INT(next_utc("* * * * * *", T0), T0 + 1);
    CHECK_INT(next_utc("*/5 * * * * *", T0), T0 + 5);
    CHECK_INT(next_utc("0 */5 * * * *", T0), T0 + 300);
    CHECK_INT(next_utc("0 0 * * * *", T0), T0 + 3600);
    CHECK_INT(next_utc("30 15 10 * * *", T0), T0 + 10 * 3600 + 15 * 60 + 30);
    /* lists and ranges */
    CHECK_INT(next_utc("0 0 9,17 * * *", T0), T0 + 9 * 3600);
    CHECK_INT(next_utc("0 0 9,17 * * *", T0 + 10 * 3600), T0 + 17 * 3600);
    CHECK_INT(next_utc("0 0 9-11/2 * * *", T0 + 9 * 3600), T0 + 11 * 3600);
    /* "a/s" runs to the end of the range */
    CHECK_INT(next_utc("10/20 * * * * *", T0), T0 + 10);
    CHECK_INT(next_utc("10/20 * * * * *", T0 + 10), T0 + 30);
    CHECK_INT(next_utc("10/20 * * * * *", T0 + 50), T0 + 70);
    /* names: the first Monday of 2026 is Jan 5; March 1 is a Sunday */
    CHECK_INT(next_utc("0 0 0 * * Mon", T0), T0 + 4 * 86400);
    CHECK_INT(next_utc("0 0 0 * * MON-FRI", T0 + 86400), T0 + 4 * 86400);
    CHECK_INT(next_utc("0 0 0 1 mar *", T0), (time_t)1772323200);
    /* both day fields must match (NCrontab): Friday the 13th is in February 2026 */
    CHECK_INT(next_utc("0 0 0 13 * Fri", T0), (time_t)1770940800);
    /* month rollover and leap day: the next Feb 29 is in 2028 */
    CHECK_INT(next_utc("0 0 0 29 2 *", T0), (time_t)1835395200);
    /* impossible dates */
    CHECK_INT(next_utc("0 0 0 30 2 *", T0), -2);
    CHECK_INT(next_utc("0 0 0 31 4,6,9,11 *", T0), -2);
    /* strictly after */
    CHECK_INT(next_utc("0 0 0 * * *", T0), T0 + 86400);
}

static void test_timespan(void)
{
    CHECK_INT(next_utc("00:00:05", T0), T0 + 5);
    CHECK_INT(next_utc("01:30", T0), T0 + 5400);
    CHECK_INT(next_utc("1.02:00:00", T0), T0 + 86400 + 7200);
    CHECK_INT(next_utc("00:00:01.500", T0), T0 + 1);
    expect_error("00:00:00", "must be positive");
    expect_error("24:00:00", "hh < 24");
    expect_error("00:60:00", "TimeSpan");
    expect_error("1:2:3:4", "TimeSpan");
    expect_error("-00:00:05", "TimeSpan");
}

static void test_errors(void)
{
    expect_error("* * * * *", "expected 6 fields");
    expect_error("* * * * * * *", "got more");
    expect_error("60 * * * * *", "second field '60' is outside 0-59");
    expect_error("* * 24 * * *", "hour field");
    expect_error("* * * 0 * *", "day field '0' is outside 1-31");
    expect_error("* * * * 13 *", "month field");
    expect_error("* * * * * 7", "day-of-week field");
    expect_error("* * * * Foo *", "bad month field 'Foo'");
    expect_error("*/0 * * * * *", "bad second field");
    expect_error("5-1 * * * * *", "outside");
    expect_error("1, * * * * *", "ends with ','");
    expect_error("", "got 0");
    azf__schedule s;
    CHECK_INT(azf__schedule_parse(&s, NULL, NULL), AZF_E_INVALID);
}

static void test_local_time(void)
{
    /* In a zone with an offset, a daily 09:00 fires at 09:00 local. */
    setenv("TZ", "Europe/Berlin", 1);
    tzset();
    azf__schedule s;
    azf__errmsg e;
    CHECK_INT(azf__schedule_parse(&s, "0 0 9 * * *", &e), 0);
    time_t n;
    CHECK_INT(azf__schedule_next(&s, T0, 1, &n), 0);
    CHECK_INT(n, T0 + 8 * 3600); /* 09:00 CET is 08:00 UTC */
    /* Across the spring DST change (2026-03-29 02:00 -> 03:00 local), 02:30 does not exist. */
    CHECK_INT(azf__schedule_parse(&s, "0 30 2 * * *", &e), 0);
    time_t before = (time_t)1774738800; /* 2026-03-28T23:00:00Z = 00:00 local on 03-29 */
    CHECK_INT(azf__schedule_next(&s, before, 1, &n), 0);
    CHECK(n > before);
    unsetenv("TZ");
    tzset();
}

int main(void)
{
    RUN(test_cron());
    RUN(test_timespan());
    RUN(test_errors());
    RUN(test_local_time());
    TEST_MAIN_END();
}
