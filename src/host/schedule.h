/* Timer schedules as the Functions host understands them: 6-field NCRONTAB
 * expressions ("sec min hour day month day-of-week") and TimeSpan intervals
 * ("[d.]hh:mm[:ss]"). Internal to the host layer. */
#ifndef AZF_HOST_SCHEDULE_H
#define AZF_HOST_SCHEDULE_H

#include <stdint.h>
#include <time.h>

#include "common/common_internal.h"

typedef struct azf__schedule {
    int is_interval;  /* 1: TimeSpan, 0: NCRONTAB */
    int64_t interval; /* TimeSpan length in seconds (> 0) */
    uint64_t seconds; /* bit n set: second n matches (0-59) */
    uint64_t minutes; /* 0-59 */
    uint32_t hours;   /* 0-23 */
    uint32_t days;    /* 1-31 */
    uint16_t months;  /* 1-12 */
    uint8_t weekdays; /* 0-6, Sunday = 0 */
} azf__schedule;

/* Parses an NCRONTAB expression or a TimeSpan. On failure returns AZF_E_PARSE
 * and writes a precise message (which field, which token) into err. */
int azf__schedule_parse(azf__schedule *s, const char *text, azf__errmsg *err);

/* The first occurrence strictly after `after`. NCRONTAB fields are matched in
 * UTC, or in the process's local time zone (TZ) when local is non-zero.
 * For a TimeSpan the next occurrence is after + interval.
 * Returns 0, or AZF_E_NOTFOUND when the expression can never match
 * (e.g. "0 0 0 30 2 *"). */
int azf__schedule_next(const azf__schedule *s, time_t after, int local, time_t *next);

#endif
