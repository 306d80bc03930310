/* NCRONTAB and TimeSpan schedules for timer triggers. */
#include "host/schedule.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const FIELD_NAMES[6] = {"second", "minute", "hour",
                                           "day",    "month",  "day-of-week"};
static const int FIELD_MIN[6] = {0, 0, 0, 1, 1, 0};
static const int FIELD_MAX[6] = {59, 59, 23, 31, 12, 6};
static const char *const MONTHS[12] = {"jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const WEEKDAYS[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A number or, for months and weekdays, a three-letter name. */
static int parse_value(int field, const char *p, size_t n, int *out)
{
    if (n == 0 || n > 9)
        return -1;
    if (isdigit((unsigned char)p[0])) {
        int v = 0;
        for (size_t i = 0; i < n; i++) {
            if (!isdigit((unsigned char)p[i]))
                return -1;
            v = v * 10 + (p[i] - '0');
        }
        *out = v;
        return 0;
    }
    const char *const *names = field == 4 ? MONTHS : field == 5 ? WEEKDAYS : NULL;
    int count = field == 4 ? 12 : 7, base = field == 4 ? 1 : 0;
    if (!names || n != 3)
        return -1;
    for (int i = 0; i < count; i++) {
        if (strncasecmp(p, names[i], 3) == 0) {
            *out = i + base;
            return 0;
        }
    }
    return -1;
}

/* One comma-separated item: "*", "*\/s", "a", "a-b", "a-b/s", "a/s". */
static int parse_item(int field, const char *p, size_t n, uint64_t *bits, const char *text,
                      azf__errmsg *err)
{
    int lo = FIELD_MIN[field], hi = FIELD_MAX[field], step = 1;
    const char *slash = memchr(p, '/', n);
    size_t range_len = slash ? (size_t)(slash - p) : n;
    if (slash) {
        size_t sl = n - range_len - 1;
        if (sl == 0 || sl > 4)
            goto bad;
        step = 0;
        for (size_t i = 1; i <= sl; i++) {
            if (!isdigit((unsigned char)slash[i]))
                goto bad;
            step = step * 10 + (slash[i] - '0');
        }
        if (step <= 0)
            goto bad;
    }
    if (range_len == 1 && p[0] == '*') {
        /* full range */
    } else {
        const char *dash = memchr(p, '-', range_len);
        if (dash) {
            if (parse_value(field, p, (size_t)(dash - p), &lo) ||
                parse_value(field, dash + 1, range_len - (size_t)(dash - p) - 1, &hi))
                goto bad;
        } else {
            if (parse_value(field, p, range_len, &lo))
                goto bad;
            /* "a/s" runs from a to the end of the range, as in NCrontab. */
            hi = slash ? FIELD_MAX[field] : lo;
        }
        if (lo < FIELD_MIN[field] || hi > FIELD_MAX[field] || lo > hi)
            return azf__err(err, AZF_E_PARSE,
                            "invalid NCRONTAB expression '%s': %s field '%.*s' is outside %d-%d",
                            text, FIELD_NAMES[field], (int)n, p, FIELD_MIN[field],
                            FIELD_MAX[field]);
    }
    for (int v = lo; v <= hi; v += step)
        *bits |= (uint64_t)1 << v;
    return 0;
bad:
    return azf__err(err, AZF_E_PARSE, "invalid NCRONTAB expression '%s': bad %s field '%.*s'", text,
                    FIELD_NAMES[field], (int)n, p);
}

static int parse_cron(azf__schedule *s, const char *text, azf__errmsg *err)
{
    uint64_t bits[6] = {0};
    const char *p = text;
    int field = 0;
    while (*p) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (field == 6)
            return azf__err(err, AZF_E_PARSE,
                            "invalid NCRONTAB expression '%s': expected 6 fields "
                            "(second minute hour day month day-of-week), got more",
                            text);
        const char *end = p;
        while (*end && *end != ' ' && *end != '\t')
            end++;
        const char *item = p;
        while (item < end) {
            const char *comma = memchr(item, ',', (size_t)(end - item));
            const char *stop = comma ? comma : end;
            int rc = parse_item(field, item, (size_t)(stop - item), &bits[field], text, err);
            if (rc)
                return rc;
            item = comma ? comma + 1 : end;
            if (comma && item == end)
                return azf__err(err, AZF_E_PARSE,
                                "invalid NCRONTAB expression '%s': %s field ends with ','", text,
                                FIELD_NAMES[field]);
        }
        field++;
        p = end;
    }
    if (field != 6)
        return azf__err(err, AZF_E_PARSE,
                        "invalid NCRONTAB expression '%s': expected 6 fields "
                        "(second minute hour day month day-of-week), got %d",
                        text, field);
    memset(s, 0, sizeof *s);
    s->seconds = bits[0];
    s->minutes = bits[1];
    s->hours = (uint32_t)bits[2];
    s->days = (uint32_t)bits[3];
    s->months = (uint16_t)bits[4];
    s->weekdays = (uint8_t)bits[5];
    return 0;
}

/* "[d.]hh:mm[:ss[.fraction]]", as .NET's TimeSpan.Parse reads it. */
static int parse_timespan(azf__schedule *s, const char *text, azf__errmsg *err)
{
    long part[4] = {0, 0, 0, 0}; /* days, hours, minutes, seconds */
    const char *p = text;
    char *end;
    if (!isdigit((unsigned char)*p))
        goto bad; /* no sign: a negative interval is meaningless */
    long first = strtol(p, &end, 10);
    if (end == p)
        goto bad;
    int idx;
    if (*end == '.') {
        part[0] = first;
        p = end + 1;
        if (!isdigit((unsigned char)*p)) /* strtol would take a sign */
            goto bad;
        part[1] = strtol(p, &end, 10);
    } else {
        part[1] = first;
    }
    if (*end != ':')
        goto bad;
    for (idx = 2; idx <= 3 && *end == ':'; idx++) {
        p = end + 1;
        if (!isdigit((unsigned char)*p))
            goto bad;
        part[idx] = strtol(p, &end, 10);
    }
    if (idx == 4 && *end == '.') { /* fraction of a second: ignored */
        end++;
        while (isdigit((unsigned char)*end))
            end++;
    }
    if (*end != '\0')
        goto bad;
    if (part[1] > 23 || part[2] > 59 || part[3] > 59 || part[0] > 10675199)
        goto bad;
    int64_t total = (int64_t)part[0] * 86400 + part[1] * 3600 + part[2] * 60 + part[3];
    if (total <= 0)
        return azf__err(err, AZF_E_PARSE, "invalid TimeSpan schedule '%s': must be positive", text);
    memset(s, 0, sizeof *s);
    s->is_interval = 1;
    s->interval = total;
    return 0;
bad:
    return azf__err(err, AZF_E_PARSE,
                    "invalid TimeSpan schedule '%s': expected [d.]hh:mm[:ss] with hh < 24, "
                    "mm < 60, ss < 60",
                    text);
}

int azf__schedule_parse(azf__schedule *s, const char *text, azf__errmsg *err)
{
    if (!s || !text)
        return AZF_E_INVALID;
    int spaces = strchr(text, ' ') != NULL || strchr(text, '\t') != NULL;
    if (!spaces && strchr(text, ':'))
        return parse_timespan(s, text, err);
    return parse_cron(s, text, err);
}

static time_t to_time(struct tm *tm, int local)
{
    tm->tm_isdst = -1;
    return local ? mktime(tm) : timegm(tm);
}

static void to_tm(time_t t, int local, struct tm *tm)
{
    if (local)
        localtime_r(&t, tm);
    else
        gmtime_r(&t, tm);
}

int azf__schedule_next(const azf__schedule *s, time_t after, int local, time_t *next)
{
    if (!s || !next)
        return AZF_E_INVALID;
    if (s->is_interval) {
        *next = after + (time_t)s->interval;
        return 0;
    }
    struct tm tm;
    time_t t = after + 1;
    /* Each step moves to the start of the next candidate unit. 50 years bound
     * the search (Feb 29 on a given weekday recurs within 28), so expressions
     * that never match end with AZF_E_NOTFOUND. */
    for (int guard = 0; guard < 1000000; guard++) {
        to_tm(t, local, &tm);
        if (!(s->months >> (tm.tm_mon + 1) & 1)) {
            tm.tm_mon++;
            tm.tm_mday = 1;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!(s->days >> tm.tm_mday & 1) || !(s->weekdays >> tm.tm_wday & 1)) {
            /* NCrontab requires both day fields to match (unlike Vixie cron). */
            tm.tm_mday++;
            tm.tm_hour = tm.tm_min = tm.tm_sec = 0;
        } else if (!(s->hours >> tm.tm_hour & 1)) {
            tm.tm_hour++;
            tm.tm_min = tm.tm_sec = 0;
        } else if (!(s->minutes >> tm.tm_min & 1)) {
            tm.tm_min++;
            tm.tm_sec = 0;
        } else if (!(s->seconds >> tm.tm_sec & 1)) {
            tm.tm_sec++;
        } else {
            *next = t;
            return 0;
        }
        time_t n = to_time(&tm, local);
        /* A DST gap can map a local time back before t; never go backwards. */
        t = n > t ? n : t + 1;
        if (t - after > (time_t)50 * 366 * 86400)
            break;
    }
    return AZF_E_NOTFOUND;
}
