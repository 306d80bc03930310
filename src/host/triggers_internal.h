/* Shared by the storage triggers: one listener thread per function (triggers.c starts
 * and stops them; queue_trigger.c and blob_trigger.c are their bodies). */
#ifndef AZF_HOST_TRIGGERS_INTERNAL_H
#define AZF_HOST_TRIGGERS_INTERNAL_H

#include "host/bindings.h"

#include <pthread.h>

typedef struct listener listener;

struct azf__triggers {
    azf__bindings *b;
    azf__fire_fn fire;
    void *runner;
    azf__log_fn log;
    char *state_dir;
    pthread_mutex_t mu; /* guards every listener's shared state and stop */
    pthread_cond_t cv;  /* signalled on stop and when an invocation settles */
    int stop; /* 1: stop polling, settle what runs; 2: leave at once (azf__triggers_join) */
    listener *listeners;
};

struct listener {
    azf__triggers *t;
    const azf_function *fn;
    azf__storage *st;
    pthread_t thread;
    int started;
    int inflight; /* invocations posted and not yet settled */
    void *state;  /* the body's own */
    void (*free_state)(void *state);
    listener *next;
};

/* Prints a line through the runner (printf-style). */
void azf__trigger_log(azf__triggers *t, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Waits on the triggers' condition until woken or ms pass; mu held. */
void azf__trigger_wait(azf__triggers *t, long ms);

/* Set up a listener for fn (0), or report why it cannot run (nonzero, printed). */
int azf__queue_listener_init(listener *l, const cJSON *binding);
void *azf__queue_listener_run(void *arg);
int azf__blob_listener_init(listener *l, const cJSON *binding);
void *azf__blob_listener_run(void *arg);

#endif
