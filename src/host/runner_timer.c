/* `azfunc start`, timer triggers: each schedule is an evtimer on the loop, re-armed
 * after every tick. */
#include "host/runner_internal.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The timer trigger's input, the JSON the host sends. */
azf_value *azf__timer_value(time_t last, time_t next, int past_due)
{
    char l[32], n[32], buf[256];
    struct tm tm;
    gmtime_r(&last, &tm);
    strftime(l, sizeof l, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    gmtime_r(&next, &tm);
    strftime(n, sizeof n, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    snprintf(buf, sizeof buf,
             "{\"Schedule\":{\"AdjustForDST\":true},\"ScheduleStatus\":{\"Last\":\"%s\","
             "\"Next\":\"%s\",\"LastUpdated\":\"%s\"},\"IsPastDue\":%s}",
             l, n, l, past_due ? "true" : "false");
    azf_value *v = NULL;
    azf_value_new_data(&v, AZF_VALUE_JSON, buf, strlen(buf));
    return v;
}

static void arm(timer *t, time_t after)
{
    if (azf__schedule_next(&t->sched, after, t->r->local_time, &t->due) != 0) {
        say(C_YELLOW, "Timer '%s' never fires again", azf_function_name(t->fn));
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double d = (double)t->due - ((double)now.tv_sec + now.tv_nsec / 1e9);
    struct timeval tv = {0, 0};
    if (d > 86400.0 * 366) /* re-armed on expiry; keeps the conversion below in range */
        d = 86400.0 * 366;
    if (d > 0) {
        tv.tv_sec = (time_t)d;
        tv.tv_usec = (suseconds_t)((d - (double)tv.tv_sec) * 1e6);
    }
    evtimer_add(t->ev, &tv);
}

static void fire(timer *t, const char *reason, int past_due)
{
    time_t now = time(NULL), next = now;
    azf__schedule_next(&t->sched, now, t->r->local_time, &next);
    char why[96];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(why, sizeof why, "Timer fired at %Y-%m-%dT%H:%M:%S+00:00", &tm);
    azf__start_call(t->r, t->fn, azf__timer_value(t->last ? t->last : now, next, past_due),
                    reason ? reason : why, NULL);
    t->last = now;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    timer *t = arg;
    (void)fd, (void)what;
    time_t now = time(NULL);
    if (t->r->stopping)
        return;
    if (now < t->due) { /* woke early (clock adjustments): wait again */
        arm(t, now - 1 < t->due - 1 ? t->due - 1 : now);
        return;
    }
    fire(t, NULL, now > t->due + 1);
    arm(t, now > t->due ? now : t->due);
}

/* As the host, at start: the schedule's next five occurrences. */
static void print_next(timer *t, const char *text)
{
    char line[512];
    size_t n = (size_t)snprintf(line, sizeof line,
                                "The next 5 occurrences of the 'Functions.%s' schedule (%s: '%s') "
                                "will be:",
                                azf_function_name(t->fn),
                                t->sched.is_interval ? "Interval" : "Cron", text);
    time_t at = time(NULL);
    for (int i = 0; i < 5 && n < sizeof line - 40; i++) {
        struct tm tm;
        if (azf__schedule_next(&t->sched, at, t->r->local_time, &at) != 0)
            break;
        t->r->local_time ? localtime_r(&at, &tm) : gmtime_r(&at, &tm);
        line[n++] = '\n';
        n += strftime(line + n, sizeof line - n, "%Y-%m-%dT%H:%M:%S%z", &tm);
        memmove(line + n - 1, line + n - 2, 3); /* +0000 -> +00:00 */
        line[n - 2] = ':', n++;
    }
    say(C_NONE, "%s", line);
}

/* Resolves "%NAME%" app-setting references as the host does. */
static char *resolve_setting(const char *text)
{
    size_t n = strlen(text);
    if (n > 2 && text[0] == '%' && text[n - 1] == '%') {
        char *name = azf__strndup(text + 1, n - 2);
        const char *v = name ? getenv(name) : NULL;
        azf__free(name);
        return azf__strdup(v ? v : "");
    }
    return azf__strdup(text);
}

void azf__setup_timers(runner *r)
{
    size_t n = azf_app_function_count(r->app);
    r->timers = azf__calloc(n ? n : 1, sizeof *r->timers);
    for (size_t i = 0; r->timers && i < n; i++) {
        const azf_function *fn = azf_app_function_at(r->app, i);
        const azf_binding *trig = azf_function_trigger(fn);
        if (!trig || strcasecmp(azf_binding_type(trig), "timerTrigger") != 0 ||
            azf_function_is_disabled(fn) || azf_function_load_error(fn))
            continue;
        cJSON *b = cJSON_Parse(azf_binding_json(trig));
        const cJSON *sched = cJSON_GetObjectItemCaseSensitive(b, "schedule");
        const cJSON *startup = cJSON_GetObjectItemCaseSensitive(b, "runOnStartup");
        timer *t = &r->timers[r->ntimers];
        azf__errmsg err = {{0}};
        char *text = cJSON_IsString(sched) ? resolve_setting(sched->valuestring) : NULL;
        int rc = text ? azf__schedule_parse(&t->sched, text, &err)
                      : azf__err(&err, AZF_E_PARSE, "the binding has no \"schedule\" string");
        azf__free(text);
        if (rc != 0) {
            say(C_RED, "Timer '%s': invalid schedule: %s", azf_function_name(fn), err.text);
        } else {
            t->r = r;
            t->fn = fn;
            t->ev = evtimer_new(r->base, on_timer, t);
            r->ntimers++;
            print_next(t, cJSON_GetStringValue(sched));
            if (cJSON_IsTrue(startup) ||
                (cJSON_IsString(startup) && strcasecmp(startup->valuestring, "true") == 0))
                fire(t, "Timer fired at startup (runOnStartup)", 0);
            arm(t, time(NULL));
        }
        cJSON_Delete(b);
    }
}

void azf__stop_timers(runner *r)
{
    for (size_t i = 0; i < r->ntimers; i++)
        evtimer_del(r->timers[i].ev);
}

void azf__free_timers(runner *r)
{
    for (size_t i = 0; i < r->ntimers; i++)
        event_free(r->timers[i].ev);
    azf__free(r->timers);
    r->timers = NULL;
    r->ntimers = 0;
}
