/* The storage triggers of `azfunc start`: one listener thread per queue- or
 * blob-triggered function, started after indexing and stopped on shutdown. */
#include "host/triggers_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <time.h>

void azf__trigger_log(azf__triggers *t, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *msg = azf__vasprintf(fmt, ap);
    va_end(ap);
    if (msg)
        t->log(level, msg);
    azf__free(msg);
}

void azf__trigger_wait(azf__triggers *t, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_sec++, ts.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&t->cv, &t->mu, &ts);
}

int azf__triggers_start(azf__triggers **out, azf_app *app, azf__bindings *b, const char *state_dir,
                        azf__fire_fn fire, void *runner, azf__log_fn log)
{
    *out = NULL;
    azf__triggers *t = azf__calloc(1, sizeof *t);
    if (!t || !(t->state_dir = azf__strdup(state_dir))) {
        azf__free(t);
        return AZF_E_NOMEM;
    }
    t->b = b, t->fire = fire, t->runner = runner, t->log = log;
    pthread_mutex_init(&t->mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &ca);
    pthread_condattr_destroy(&ca);
    for (size_t i = 0; i < azf_app_function_count(app); i++) {
        const azf_function *fn = azf_app_function_at(app, i);
        const azf_binding *trig = azf_function_trigger(fn);
        if (!trig || azf_function_is_disabled(fn) || azf_function_load_error(fn))
            continue;
        int queue = strcasecmp(azf_binding_type(trig), "queueTrigger") == 0;
        int blob = strcasecmp(azf_binding_type(trig), "blobTrigger") == 0;
        if (!queue && !blob)
            continue;
        listener *l = azf__calloc(1, sizeof *l);
        if (!l)
            break;
        l->t = t, l->fn = fn;
        azf__errmsg err = {{0}};
        cJSON *bj = cJSON_Parse(azf_binding_json(trig));
        int rc = (l->st = azf__bindings_account(b, trig, &err)) ? 0 : -1;
        if (rc != 0)
            azf__trigger_log(t, AZF_LOG_ERROR, "Function '%s' cannot listen: %s",
                             azf_function_name(fn), err.text);
        else
            rc = queue ? azf__queue_listener_init(l, bj) : azf__blob_listener_init(l, bj);
        cJSON_Delete(bj);
        if (rc != 0 ||
            pthread_create(&l->thread, NULL,
                           queue ? azf__queue_listener_run : azf__blob_listener_run, l) != 0) {
            if (l->free_state)
                l->free_state(l->state);
            azf__free(l);
            continue;
        }
        l->started = 1;
        l->next = t->listeners;
        t->listeners = l;
    }
    if (!t->listeners) {
        azf__triggers_free(t);
        return 0;
    }
    *out = t;
    return 0;
}

/* Sets how the threads stop (1: settle what runs, 2: leave at once; never back to 1). */
static void set_stop(azf__triggers *t, int how)
{
    pthread_mutex_lock(&t->mu);
    if (t->stop < how)
        t->stop = how;
    pthread_cond_broadcast(&t->cv);
    pthread_mutex_unlock(&t->mu);
}

static void join_threads(azf__triggers *t)
{
    for (listener *l = t->listeners; l; l = l->next)
        if (l->started) {
            pthread_join(l->thread, NULL);
            l->started = 0;
        }
}

void azf__triggers_stop(azf__triggers *t)
{
    if (t)
        set_stop(t, 1);
}

void azf__triggers_join(azf__triggers *t)
{
    if (!t)
        return;
    set_stop(t, 2);
    join_threads(t);
}

void azf__triggers_free(azf__triggers *t)
{
    if (!t)
        return;
    set_stop(t, 1);
    join_threads(t);
    int leaked = 0;
    for (listener *l = t->listeners; l; l = l->next)
        if (l->started)
            pthread_join(l->thread, NULL);
    for (listener *l = t->listeners, *next; l; l = next) {
        next = l->next;
        pthread_mutex_lock(&t->mu);
        int busy = l->inflight > 0;
        pthread_mutex_unlock(&t->mu);
        if (busy) { /* an invocation never settled (still running at exit): keep its memory */
            leaked = 1;
            continue;
        }
        if (l->free_state)
            l->free_state(l->state);
        azf__free(l);
    }
    if (leaked)
        return;
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    azf__free(t->state_dir);
    azf__free(t);
}
