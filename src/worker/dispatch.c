/* The dispatch point: every message from the host goes through one table, whose
 * entries say which handler answers it and on which thread. The I/O thread runs what
 * answers at once (and queues invocations to their handlers); the app thread runs
 * what may take long (indexing, loading, reloading the app, draining on terminate). */
#include "worker_internal.h"

#include <string.h>

/* The end of the stream leaves running invocations this long to finish. */
#define FINAL_DRAIN_MS 2000

enum { ON_IO, ON_APP };

static const struct route {
    int content_case;
    azf__worker_handler fn;
    int thread;
    int is_work;   /* refused once the worker is terminating */
    int ends_work; /* marks the worker terminating on receipt (I/O thread) */
} routes[] = {
    /* On the app thread: the provider's init may index the app and start a server. */
    {AZF__PB_CASE(WORKER_INIT_REQUEST), azf__lifecycle_init, ON_APP, 0, 0},
    {AZF__PB_CASE(WORKER_STATUS_REQUEST), azf__lifecycle_status, ON_IO, 0, 0},
    {AZF__PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_REQUEST), azf__lifecycle_reload, ON_APP, 1, 0},
    {AZF__PB_CASE(WORKER_TERMINATE), azf__lifecycle_terminate, ON_APP, 0, 1},
    {AZF__PB_CASE(FUNCTIONS_METADATA_REQUEST), azf__functions_metadata, ON_APP, 1, 0},
    {AZF__PB_CASE(FUNCTION_LOAD_REQUEST), azf__functions_load, ON_APP, 1, 0},
    /* Invocations are answered even during shutdown (a Failure then). */
    {AZF__PB_CASE(INVOCATION_REQUEST), azf__invocations_invoke, ON_IO, 0, 0},
    {AZF__PB_CASE(INVOCATION_CANCEL), azf__invocations_cancel, ON_IO, 0, 0},
    {AZF__PB_CASE(CLOSE_SHARED_MEMORY_RESOURCES_REQUEST), azf__shared_memory_close, ON_IO, 0, 0},
};

struct azf__job {
    azf__msg *m;
    azf__worker_handler fn;
    struct azf__job *next;
};

static void report(int rc, int content_case)
{
    if (rc)
        azf__log(AZF_LOG_ERROR, "cannot answer a host request (field %d): %s", content_case,
                 azf_strerror(rc));
}

static int post(azf_worker *w, azf__msg *m, azf__worker_handler fn)
{
    azf__job *job = azf__calloc(1, sizeof *job);
    if (!job)
        return AZF_E_NOMEM;
    job->m = m;
    job->fn = fn;
    pthread_mutex_lock(&w->lock);
    *w->jobs_tail = job;
    w->jobs_tail = &job->next;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int azf__worker_dispatch(azf_worker *w, azf__msg *m)
{
    const struct route *r = NULL;
    for (size_t i = 0; i < sizeof routes / sizeof routes[0] && !r; i++)
        if (routes[i].content_case == (int)m->content_case)
            r = &routes[i];
    if (!r) {
        const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
            &azure_functions_rpc_messages__streaming_message__descriptor,
            (unsigned)m->content_case);
        if (!f)
            azf__worker_log(w, AZF_LOG_WARNING,
                            "received a StreamingMessage with no content known to this worker "
                            "(an unknown message type?); ignored");
        else
            azf__worker_log(w, AZF_LOG_WARNING,
                            "received an unsupported StreamingMessage content type %s (field "
                            "%d); ignored",
                            f->name, (int)m->content_case);
        return 0;
    }
    if (r->is_work && atomic_load(&w->terminating)) {
        azf__worker_log(w, AZF_LOG_WARNING,
                        "the worker is shutting down: a request (field %d) was not handled",
                        r->content_case);
        return 0;
    }
    if (r->ends_work) {
        int expected = 0;
        if (!atomic_compare_exchange_strong(&w->terminating, &expected, 1))
            return 0; /* a second WorkerTerminate changes nothing */
    }
    if (r->thread == ON_IO) {
        report(r->fn(w, m), r->content_case);
        return 0;
    }
    int rc = post(w, m, r->fn);
    if (rc && r->ends_work) /* cannot drain: at least end the conversation */
        azf__worker_begin_shutdown(w, 1, 1000);
    report(rc, r->content_case);
    return rc == 0;
}

/* ---- the app thread ------------------------------------------------------------- */

void azf__worker_run_jobs(azf_worker *w)
{
    for (;;) {
        pthread_mutex_lock(&w->lock);
        azf__job *job = w->jobs;
        if (job && !(w->jobs = job->next))
            w->jobs_tail = &w->jobs;
        pthread_mutex_unlock(&w->lock);
        if (!job)
            return;
        report(job->fn(w, job->m), (int)job->m->content_case);
        azf__msg_free(job->m);
        azf__free(job);
    }
}

static void *app_thread(void *arg)
{
    azf_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->jobs && !w->app_quit)
            pthread_cond_wait(&w->cond, &w->lock);
        azf__job *job = w->jobs;
        if (!job)
            break;
        if (!(w->jobs = job->next))
            w->jobs_tail = &w->jobs;
        pthread_mutex_unlock(&w->lock);
        report(job->fn(w, job->m), (int)job->m->content_case);
        azf__msg_free(job->m);
        azf__free(job);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    /* The conversation is over: complete what still runs (responses are dropped if
     * the stream is gone). */
    azf__invocations_drain(w, FINAL_DRAIN_MS);
    return NULL;
}

int azf__worker_app_init(azf_worker *w)
{
    w->jobs_tail = &w->jobs;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    int rc = azf__invocations_init(w);
    if (rc)
        return rc;
    if (w->opts.reg) {
        w->reg = w->opts.reg;
        return 0;
    }
    w->own_reg = 1;
    return azf_registry_new(&w->reg);
}

int azf__worker_app_start(azf_worker *w)
{
    if (pthread_create(&w->app_thread, NULL, app_thread, w))
        return AZF_E_NOMEM;
    w->app_started = 1;
    return 0;
}

void azf__worker_app_finish(azf_worker *w)
{
    if (!w->app_started)
        return;
    pthread_mutex_lock(&w->lock);
    w->app_quit = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->app_thread, NULL);
    w->app_started = 0;
}

void azf__worker_app_free(azf_worker *w)
{
    if (!w->flights) /* azf_worker_new failed before the app side existed */
        return;
    azf__worker_app_finish(w);
    for (azf__job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        azf__msg_free(j->m);
        azf__free(j);
    }
    /* A handler that never completes still holds a function: keep the registry. */
    int running = azf__invocations_free(w);
    if (w->own_reg && !running)
        azf_registry_free(w->reg);
    azf__functions_free(w);
    azf__shared_memory_free(w);
    azf__free(w->app_dir);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}
