/* Invocations in the Python adapter plugin (the shape of NGINX Unit's Python
 * module; docs/python-invocations.md).
 *
 * Sync functions: invoke() queues a job and wakes ONE idle pool thread, the
 * most recently idle (a light load stays on one hot thread), or starts one, up
 * to PYTHON_THREADPOOL_THREAD_COUNT. Idle threads wait without the GIL, each on
 * its own condition variable (after a short watch: see SPIN_NS). The thread
 * takes the GIL once, builds the inputs (azf_value -> azure.functions Datum
 * shapes, here in C), makes ONE Python call
 * (the function's runner, resolved when the function loaded), turns the call's
 * return value into azf_values, drops the GIL and completes the invocation.
 * Async functions: the job goes to the asyncio loop thread through an eventfd
 * (invocation.py _on_jobs); the task's outcome, same shape, comes back
 * through native.finish. Kinds cross the boundary as AZF_VALUE_* integers.
 *
 * Exactly one completion: every completion, log and output call on an
 * invocation goes through its entry, whose lock and `done` flag serialise the
 * function's own completion against drain's. No thread waits for an entry
 * lock while it holds the GIL (a pool thread may wait for the GIL while it
 * holds its own entry's lock); starter callbacks run without the GIL. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/plugin_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define host azf__py_host_table
#define API (host->api)

enum { JOB_INVOKE = 0, JOB_CANCEL = 1 };
enum { END_OK = 0, END_FAIL = 1, END_CANCEL = 2 }; /* invocation.py's END_* */

/* A loaded function: its runner and what C needs to dispatch it. */
struct azf__py_func {
    char *id, *name;
    PyObject *runner; /* invocation._Runner (GIL) */
    int is_async;
    int needs_metadata; /* an input converter reads the trigger metadata */
    azf__py_func *next;
};

struct azf__py_entry {
    pthread_mutex_t lock; /* held across log, output and completion calls */
    int done;
    atomic_int refs; /* the in-flight list, each queued job, each capsule */
    azf_invocation *inv;
    azf__py_func *func;           /* NULL until resolved (rt->lock) */
    azf__py_entry *prev, *next;   /* the in-flight list (rt->lock) */
    azf__py_entry *aprev, *anext; /* every live entry (all_lock) */
};

/* Every entry not yet freed: after an embedded interpreter is finalised, the
 * capsules of abandoned functions (a sync function that never returned) will
 * never be destroyed, so their entries are freed here. */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static azf__py_entry *all_entries;

struct azf__py_job {
    int kind;
    azf__py_entry *entry; /* one reference */
    azf__py_job *next;
};

/* An idle pool thread (on its own stack), in rt->idle_threads. */
struct azf__py_thread {
    pthread_cond_t wake;
    atomic_int woken; /* set under rt->lock; read without it while spinning */
    int spinning;     /* watching `woken` before it waits: needs no signal (pool_run) */
    int counted;      /* woken by pool_dispatch: counted in rt->waking */
    int standby;      /* rt->standby: watching the queue (see pool_dispatch) */
    pid_t tid;        /* for its scheduler state (thread_runnable) */
    azf__py_thread *next;
    azf__py_thread *busy_next; /* in rt->busy_threads while it runs a job */
};

/* Wakes an idle thread taken off rt->idle_threads (rt->lock held). */
static void thread_wake(azf__py_thread *t)
{
    atomic_store(&t->woken, 1);
    if (!t->spinning)
        pthread_cond_signal(&t->wake);
}

static void entry_free(azf__py_entry *e)
{
    pthread_mutex_destroy(&e->lock);
    host->free(e);
}

static void entry_unref(azf__py_entry *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
        pthread_mutex_lock(&all_lock);
        if (e->aprev)
            e->aprev->anext = e->anext;
        else
            all_entries = e->anext;
        if (e->anext)
            e->anext->aprev = e->aprev;
        pthread_mutex_unlock(&all_lock);
        entry_free(e);
    }
}

/* Removes e from the in-flight list (once) and wakes a draining thread. */
static void entry_retire(azf__py_runtime *rt, azf__py_entry *e)
{
    int listed = 0;
    pthread_mutex_lock(&rt->lock);
    if (e->prev || rt->inflight == e) {
        listed = 1;
        if (e->prev)
            e->prev->next = e->next;
        else
            rt->inflight = e->next;
        if (e->next)
            e->next->prev = e->prev;
        e->prev = e->next = NULL;
        rt->inflight_count--;
        pthread_cond_broadcast(&rt->idle);
    }
    pthread_mutex_unlock(&rt->lock);
    if (listed)
        entry_unref(e);
}

/* An outcome converted from Python, applied without the GIL. Owns its strings
 * and values. */
typedef struct outcome {
    int how;
    char *message, *stack; /* may hold NUL (a Python str may) */
    size_t message_len, stack_len;
    size_t n_out;
    char **names;
    azf_value **outs;
    azf_value *ret;
    char err[256]; /* a conversion failure (how = END_FAIL, message NULL) */
} outcome;

static void outcome_clear(outcome *o)
{
    for (size_t i = 0; i < o->n_out; i++) {
        if (o->names)
            host->free(o->names[i]);
        if (o->outs)
            API->azf_value_free(o->outs[i]);
    }
    host->free(o->names);
    host->free(o->outs);
    API->azf_value_free(o->ret);
    host->free(o->message);
    host->free(o->stack);
    memset(o, 0, sizeof *o);
}

/* Completes the invocation unless it already was; values are set first.
 * Never with the GIL. Returns 1 when this call completed it. */
static int entry_finish(azf__py_runtime *rt, azf__py_entry *e, outcome *o)
{
    int completed = 0;
    const char *msg = o->message ? o->message : o->err;
    size_t msg_len = o->message ? o->message_len : strlen(o->err);
    const char *stack = o->stack ? o->stack : "";
    size_t stack_len = o->stack ? o->stack_len : 0;
    int how = o->how;
    char err[256];
    pthread_mutex_lock(&e->lock);
    if (!e->done) {
        e->done = 1;
        completed = 1;
        for (size_t i = 0; how == END_OK && i < o->n_out; i++) {
            int rc = API->azf_invocation_set_output(e->inv, o->names[i], o->outs[i]);
            if (rc < 0) {
                snprintf(err, sizeof err, "TypeError: cannot set the output binding '%s': %s",
                         o->names[i],
                         rc == AZF_E_NOTFOUND      ? "no such out binding"
                         : rc == AZF_E_UNSUPPORTED ? "the host does not accept this kind"
                                                   : "invalid value");
                how = END_FAIL;
                msg = err;
                stack = "";
            } else {
                o->outs[i] = NULL;
            }
        }
        if (how == END_OK && o->ret) {
            if (API->azf_invocation_set_return(e->inv, o->ret) < 0) {
                snprintf(err, sizeof err,
                         "TypeError: cannot set the return value: the host does not accept it");
                how = END_FAIL;
                msg = err;
                stack = "";
            } else {
                o->ret = NULL;
            }
        }
        if (how == END_OK)
            API->azf_invocation_complete(e->inv);
        else if (how == END_CANCEL)
            API->azf_invocation_complete_cancelled(e->inv);
        else
            API->azf_invocation_fail_len(e->inv, msg, msg_len, stack, stack_len);
    }
    pthread_mutex_unlock(&e->lock);
    outcome_clear(o);
    if (completed)
        entry_retire(rt, e);
    return completed;
}

static int entry_end(azf__py_runtime *rt, azf__py_entry *e, int how, const char *msg)
{
    outcome o = {.how = how};
    if (msg)
        snprintf(o.err, sizeof o.err, "%s", msg);
    return entry_finish(rt, e, &o);
}

/* ------------------------------------------------------------------ functions */

/* The loaded function of an invocation (rt->lock held): by id, else by name. */
static azf__py_func *func_find(azf__py_runtime *rt, const azf_function *fn)
{
    const char *id = API->azf_function_id(fn), *name = API->azf_function_name(fn);
    for (azf__py_func *f = rt->funcs; f; f = f->next)
        if (id && !strcmp(f->id, id))
            return f;
    for (azf__py_func *f = rt->funcs; f; f = f->next)
        if (name && !strcmp(f->name, name))
            return f;
    return NULL;
}

static char *dup_str(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = host->malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

/* invocation.runner(function_id, name) -> (runner, is_async, needs_metadata,
 * name). GIL held. Adds the function (or returns the one already there).
 * NULL with a Python error set when Python cannot resolve it. */
static azf__py_func *func_resolve(azf__py_runtime *rt, const char *id, const char *name)
{
    PyObject *r = PyObject_CallMethod(rt->invocation, "runner", "sz", id, name);
    if (!r)
        return NULL;
    azf__py_func *f = host->malloc(sizeof *f);
    PyObject *runner;
    int is_async, needs_md;
    const char *fname;
    if (!f || !PyArg_ParseTuple(r, "Opps", &runner, &is_async, &needs_md, &fname)) {
        host->free(f);
        Py_DECREF(r);
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        return NULL;
    }
    memset(f, 0, sizeof *f);
    f->id = dup_str(id);
    f->name = dup_str(fname);
    f->runner = Py_NewRef(runner);
    f->is_async = is_async;
    f->needs_metadata = needs_md;
    Py_DECREF(r);
    if (!f->id || !f->name) {
        host->free(f->id);
        host->free(f->name);
        Py_DECREF(f->runner);
        host->free(f);
        PyErr_NoMemory();
        return NULL;
    }
    pthread_mutex_lock(&rt->lock);
    f->next = rt->funcs;
    rt->funcs = f;
    pthread_mutex_unlock(&rt->lock);
    return f;
}

int azf__py_func_load(azf__py_runtime *rt, const char *function_id)
{
    pthread_mutex_lock(&rt->lock);
    int known = 0;
    for (azf__py_func *f = rt->funcs; f; f = f->next)
        known |= !strcmp(f->id, function_id);
    pthread_mutex_unlock(&rt->lock);
    return known || func_resolve(rt, function_id, NULL) ? 0 : -1;
}

void azf__py_funcs_clear(azf__py_runtime *rt, int with_gil)
{
    pthread_mutex_lock(&rt->lock);
    azf__py_func *f = rt->funcs;
    rt->funcs = NULL;
    pthread_mutex_unlock(&rt->lock);
    for (azf__py_func *next; f; f = next) {
        next = f->next;
        if (with_gil)
            Py_DECREF(f->runner);
        host->free(f->id);
        host->free(f->name);
        host->free(f);
    }
}

/* ------------------------------------------------------------------ handler side */

static void wake_loop(azf__py_runtime *rt)
{
    uint64_t one = 1;
    while (write(rt->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Queues a job (takes one reference of e): async invocations and cancels of
 * async invocations go to the loop thread, the rest to the pool. rt->lock held. */
static int push_job(azf__py_runtime *rt, int kind, azf__py_entry *e, int to_loop)
{
    azf__py_job *j = host->malloc(sizeof *j);
    if (!j)
        return AZF_E_NOMEM;
    j->kind = kind;
    j->entry = e;
    j->next = NULL;
    atomic_fetch_add(&e->refs, 1);
    azf__py_job **head = to_loop ? &rt->loop_head : &rt->head;
    azf__py_job **tail = to_loop ? &rt->loop_tail : &rt->tail;
    if (*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
    return 0;
}

static azf__py_job *pop_job(azf__py_job **head, azf__py_job **tail)
{
    azf__py_job *j = *head;
    if (j && !(*head = j->next))
        *tail = NULL;
    return j;
}

static void *pool_main(void *arg);
static void *pool_main_standby(void *arg);

/* How the pool grows. A sync function may block (its thread then sleeps
 * without the GIL) or keep the GIL busy; only the first kind needs more
 * threads, and more threads for the second only convoy on the GIL. So while
 * a thread is busy, a queued job waits for it and one idle thread stands by
 * instead, checking every SERVING_NS. It takes a job when the queue has not
 * moved (no job started or finished) for SERVING_NS and no busy thread is on
 * a CPU or waiting for one, or, whatever their state, for SWITCH_NS: what
 * CPython's switch interval would give a second thread anyway. The state
 * matters on a loaded machine: a busy thread preempted for a few hundred
 * microseconds is not stuck, and a second thread would only take the GIL
 * from it when it runs again. Without a busy thread, a job wakes the most
 * recently idle thread at once; at most one thread is on its way at a time,
 * and each one that takes a job with more queued may wake the next. */
#define SERVING_NS 250000LL
#define SWITCH_NS 5000000LL /* sys.getswitchinterval()'s default */

/* Once two threads take turns with the GIL, both would go on taking jobs from
 * a full queue, each job then a GIL hand-over (a futex wake-up and a context
 * switch). A thread that waited this long for the GIL while another was busy
 * steps back after its job: it leaves the queue to the busy threads and
 * stands by (or goes idle when another already does). */
#define CONVOY_NS 20000LL

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* After a sync job was queued, or a pool thread took one with more queued
 * (rt->lock held). Returns 1 when a new thread should be started (2: to
 * stand by). */
static int pool_dispatch(azf__py_runtime *rt)
{
    if (!rt->head || rt->waking)
        return 0;
    azf__py_thread *t = rt->idle_threads;
    if (rt->busy) {
        if (rt->standby || rt->standby_starting)
            return 0;
        if (t) { /* someone to check on the queue */
            rt->idle_threads = t->next;
            t->standby = 1;
            rt->standby = t;
            thread_wake(t);
            return 0;
        }
        if (rt->threads < rt->max_threads) {
            rt->threads++;
            rt->standby_starting = 1;
            return 2;
        }
        return 0;
    }
    if (t) {
        rt->idle_threads = t->next;
        t->counted = 1;
        rt->waking++;
        thread_wake(t);
        return 0;
    }
    if (rt->threads < rt->max_threads) {
        rt->threads++;
        rt->waking++; /* until the new thread runs */
        return 1;
    }
    return 0;
}

/* Starts a pool thread (counted already; how: pool_dispatch's answer).
 * Without any thread, queued jobs would never run: they fail. */
static void pool_spawn(azf__py_runtime *rt, int how)
{
    pthread_t tid;
    pthread_attr_t attr;
    int ok = pthread_attr_init(&attr) == 0;
    if (ok) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        ok = pthread_create(&tid, &attr, how == 2 ? pool_main_standby : pool_main, rt) == 0;
        pthread_attr_destroy(&attr);
    }
    if (ok)
        return;
    azf__py_job *jobs = NULL;
    pthread_mutex_lock(&rt->lock);
    rt->threads--;
    if (how == 2)
        rt->standby_starting = 0;
    else
        rt->waking--;
    if (rt->threads == 0) {
        jobs = rt->head;
        rt->head = rt->tail = NULL;
    }
    pthread_cond_broadcast(&rt->idle);
    pthread_mutex_unlock(&rt->lock);
    for (azf__py_job *next; jobs; jobs = next) {
        next = jobs->next;
        if (jobs->kind == JOB_INVOKE)
            entry_end(rt, jobs->entry, END_FAIL, "RuntimeError: cannot start a Python thread");
        entry_unref(jobs->entry);
        host->free(jobs);
    }
}

static long long run_job(azf__py_runtime *rt, azf__py_entry *e, PyThreadState **ts);

/* invoke (here = 0) and run (here = 1: a sync function runs on this thread). */
static int entry_start(azf__py_runtime *rt, azf_invocation *inv, int here)
{
    azf__py_entry *e = host->malloc(sizeof *e);
    if (!e)
        return AZF_E_NOMEM;
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    atomic_init(&e->refs, 1); /* the in-flight list */
    e->inv = inv;
    pthread_mutex_lock(&all_lock);
    e->anext = all_entries;
    if (e->anext)
        e->anext->aprev = e;
    all_entries = e;
    pthread_mutex_unlock(&all_lock);
    int spawn = 0, to_loop = 0, rc = 0;
    pthread_mutex_lock(&rt->lock);
    e->func = func_find(rt, API->azf_invocation_function(inv));
    to_loop = e->func && e->func->is_async;
    here = here && e->func && !to_loop;
    if (rt->draining || rt->stopping)
        rc = AZF_E_STATE;
    else if (here)
        atomic_fetch_add(&e->refs, 1); /* as a job's */
    else
        rc = push_job(rt, JOB_INVOKE, e, to_loop);
    if (rc == 0) {
        e->next = rt->inflight;
        if (e->next)
            e->next->prev = e;
        rt->inflight = e;
        rt->inflight_count++;
        if (!to_loop && !here)
            spawn = pool_dispatch(rt);
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc < 0) {
        entry_unref(e);
        if (rc == AZF_E_STATE) {
            API->azf_invocation_fail(inv, "RuntimeError: the Python worker is shutting down", "");
            return 0;
        }
        return rc;
    }
    if (here) {
        run_job(rt, e, NULL);
        entry_unref(e);
    }
    if (to_loop)
        wake_loop(rt);
    if (spawn)
        pool_spawn(rt, spawn);
    return 0;
}

int azf__py_invoke(azf__py_runtime *rt, azf_invocation *inv)
{
    return entry_start(rt, inv, 0);
}

int azf__py_run(azf__py_runtime *rt, azf_invocation *inv)
{
    return entry_start(rt, inv, 1);
}

/* Only a running task can be cancelled; a queued sync job reads the flag. */
void azf__py_cancel(azf__py_runtime *rt, azf_invocation *inv)
{
    int woke = 0;
    pthread_mutex_lock(&rt->lock);
    for (azf__py_entry *e = rt->inflight; e; e = e->next)
        if (e->inv == inv) {
            if (e->func && e->func->is_async)
                woke = push_job(rt, JOB_CANCEL, e, 1) == 0;
            break;
        }
    pthread_mutex_unlock(&rt->lock);
    if (woke)
        wake_loop(rt);
}

static void deadline_after_ns(struct timespec *ts, long long ns)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ns / 1000000000LL);
    ts->tv_nsec += (long)(ns % 1000000000LL);
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int azf__py_drain(azf__py_runtime *rt, int timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms >= 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&rt->lock);
    rt->draining = 1;
    while (rt->inflight) {
        if (timeout_ms < 0)
            pthread_cond_wait(&rt->idle, &rt->lock);
        else if (pthread_cond_timedwait(&rt->idle, &rt->lock, &deadline) == ETIMEDOUT)
            break;
    }
    /* Past the deadline: take the stragglers and ask async ones to stop. */
    size_t n = rt->inflight_count, k = 0;
    int woke = 0;
    azf__py_entry **left = n ? host->malloc(n * sizeof *left) : NULL;
    for (azf__py_entry *e = rt->inflight; e && left; e = e->next) {
        atomic_fetch_add(&e->refs, 1);
        left[k++] = e;
        if (e->func && e->func->is_async)
            woke |= push_job(rt, JOB_CANCEL, e, 1) == 0;
    }
    pthread_mutex_unlock(&rt->lock);
    if (woke)
        wake_loop(rt);
    int failed = 0;
    for (size_t i = 0; i < k; i++) {
        failed += entry_end(rt, left[i], END_FAIL,
                            "TimeoutError: the invocation did not finish before the worker "
                            "shut down");
        entry_unref(left[i]);
    }
    host->free(left);
    return n && !left ? AZF_E_NOMEM : failed;
}

int azf__py_invoke_init(azf__py_runtime *rt)
{
    rt->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rt->efd < 0)
        return AZF_E_IO;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_cond_init(&rt->idle, NULL);
    rt->max_threads = 1; /* until invocation.apply_settings says */
    return 0;
}

/* Stops the pool: idle threads exit (each takes the GIL once to drop its
 * thread state), busy ones are abandoned (they exit when their function
 * returns, or with the interpreter). */
int azf__py_pool_stop(azf__py_runtime *rt)
{
    PyThreadState *ts = PyGILState_Check() ? PyEval_SaveThread() : NULL; /* they need it */
    pthread_mutex_lock(&rt->lock);
    rt->stopping = 1;
    for (azf__py_thread *t = rt->idle_threads; t; t = t->next)
        thread_wake(t);
    rt->idle_threads = NULL;
    if (rt->standby)
        pthread_cond_signal(&rt->standby->wake);
    while (rt->threads > rt->busy)
        pthread_cond_wait(&rt->idle, &rt->lock);
    int busy = rt->busy;
    pthread_mutex_unlock(&rt->lock);
    if (ts)
        PyEval_RestoreThread(ts);
    return busy;
}

int azf__py_invoke_fini(azf__py_runtime *rt, int finalized)
{
    if (rt->efd < 0)
        return 1;
    /* Queued jobs of invocations that never ran: they were failed by drain. */
    azf__py_job *queues[2] = {rt->head, rt->loop_head};
    for (int q = 0; q < 2; q++)
        for (azf__py_job *j = queues[q], *next; j; j = next) {
            next = j->next;
            entry_unref(j->entry);
            host->free(j);
        }
    rt->head = rt->tail = rt->loop_head = rt->loop_tail = NULL;
    while (rt->inflight)
        entry_end(rt, rt->inflight, END_FAIL, "RuntimeError: the Python runtime was closed");
    pthread_mutex_lock(&rt->lock);
    int busy = rt->threads;
    pthread_mutex_unlock(&rt->lock);
    if (busy)
        return 0;
    azf__py_funcs_clear(rt, 0); /* their runners went with the interpreter, or were cleared */
    if (finalized) {
        pthread_mutex_lock(&all_lock);
        azf__py_entry *e = all_entries;
        all_entries = NULL;
        pthread_mutex_unlock(&all_lock);
        for (azf__py_entry *next; e; e = next) {
            next = e->anext;
            entry_free(e);
        }
    }
    close(rt->efd);
    rt->efd = -1;
    pthread_cond_destroy(&rt->idle);
    pthread_mutex_destroy(&rt->lock);
    return 1;
}

/* ------------------------------------------------------------------ values -> Python */

/* Per-process Python state of the module (one runtime at a time). */
static struct {
    azf__py_runtime *rt;
    PyObject *datum;     /* azure.functions.meta.Datum (set by invocation.start) */
    PyObject *namespace; /* types.SimpleNamespace */
    PyObject *kind[AZF_VALUE_COLLECTION_MODEL_BINDING_DATA + 1]; /* Datum types, by kind */
    PyObject *s[16];                                             /* attribute names, A_* */
    void *module; /* the current module: an older one freed later leaves N alone */
} N;

/* Attribute and key names of the library's input shapes (not kinds). */
enum {
    A_METHOD,
    A_URL,
    A_HEADERS,
    A_PARAMS,
    A_QUERY,
    A_BODY,
    A_VERSION,
    A_SOURCE,
    A_CONTENT_TYPE,
    A_CONTENT,
    A_BYTES,
    A_STRING,
    A_DOUBLE,
    A_SINT64,
    A_MBD,
    A_COUNT
};

static const char *const a_text[A_COUNT] = {
    "method", "url",     "headers", "params",       "query",
    "body",   "version", "source",  "content_type", "content",
    "bytes",  "string",  "double",  "sint64",       "model_binding_data",
};

static const char *ENTRY_CAPSULE = "azfunc.invocation";

static azf__py_entry *entry_of(PyObject *cap)
{
    return PyCapsule_GetPointer(cap, ENTRY_CAPSULE);
}

static void capsule_free(PyObject *cap)
{
    entry_unref(PyCapsule_GetPointer(cap, ENTRY_CAPSULE));
}

static PyObject *text(const char *s, size_t n)
{
    return PyUnicode_DecodeUTF8(s ? s : "", s ? (Py_ssize_t)n : 0, "surrogateescape");
}

static PyObject *ctext(const char *s)
{
    return text(s, s ? strlen(s) : 0);
}

/* Datum(value, type); steals value. */
static PyObject *make_datum(PyObject *value, int kind)
{
    if (!value)
        return NULL;
    PyObject *d = PyObject_CallFunctionObjArgs(N.datum, value, N.kind[kind], NULL);
    Py_DECREF(value);
    return d;
}

/* SimpleNamespace(**{attr: value}); steals value. */
static PyObject *make_ns1(int attr, PyObject *value)
{
    if (!value)
        return NULL;
    PyObject *kw = PyDict_New();
    PyObject *r = NULL;
    if (kw && PyDict_SetItem(kw, N.s[attr], value) == 0) {
        PyObject *empty = PyTuple_New(0);
        if (empty)
            r = PyObject_Call(N.namespace, empty, kw);
        Py_XDECREF(empty);
    }
    Py_XDECREF(kw);
    Py_DECREF(value);
    return r;
}

static PyObject *value_to_py(const azf_value *v);

static PyObject *http_map(const azf_value *v, int map)
{
    PyObject *d = PyDict_New();
    size_t n = API->azf_value_http_count(v, map);
    for (size_t i = 0; d && i < n; i++) {
        const char *val = NULL;
        const char *name = API->azf_value_http_entry(v, map, i, &val);
        PyObject *k = ctext(name);
        PyObject *dv = make_datum(ctext(val), AZF_VALUE_STRING);
        if (!k || !dv || PyDict_SetItem(d, k, dv) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(dv);
    }
    return d;
}

static PyObject *http_to_py(const azf_value *v)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    const azf_value *b = API->azf_value_http_body(v);
    PyObject *body = API->azf_value_kind(b)
                         ? value_to_py(b)
                         : make_datum(PyBytes_FromStringAndSize("", 0), AZF_VALUE_BYTES);
    PyObject *items[6] = {
        make_datum(ctext(API->azf_value_http_method(v)), AZF_VALUE_STRING),
        make_datum(ctext(API->azf_value_http_url(v)), AZF_VALUE_STRING),
        http_map(v, AZF_HTTP_HEADERS),
        http_map(v, AZF_HTTP_PARAMS),
        http_map(v, AZF_HTTP_QUERY),
        body,
    };
    static const int keys[6] = {A_METHOD, A_URL, A_HEADERS, A_PARAMS, A_QUERY, A_BODY};
    for (int i = 0; i < 6; i++) {
        if (d && (!items[i] || PyDict_SetItem(d, N.s[keys[i]], items[i]) < 0))
            Py_CLEAR(d);
        Py_XDECREF(items[i]);
    }
    return d ? make_datum(d, AZF_VALUE_HTTP) : NULL;
}

static PyObject *mbd_to_ns(const azf_value *v)
{
    size_t len = 0;
    const void *content = API->azf_value_model_content(v, &len);
    PyObject *kw = Py_BuildValue("{OsOsOsOy#}", N.s[A_VERSION], API->azf_value_model_version(v),
                                 N.s[A_SOURCE], API->azf_value_model_source(v), N.s[A_CONTENT_TYPE],
                                 API->azf_value_model_content_type(v), N.s[A_CONTENT],
                                 content ? (const char *)content : "", (Py_ssize_t)len);
    if (!kw)
        return NULL;
    PyObject *empty = PyTuple_New(0);
    PyObject *r = empty ? PyObject_Call(N.namespace, empty, kw) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(kw);
    return r;
}

/* The Datum (or None) the library expects for a value (azure-functions-library.md §2.2). */
static PyObject *value_to_py(const azf_value *v)
{
    size_t len = 0;
    const char *data;
    int kind = API->azf_value_kind(v);
    switch (kind) {
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
        data = API->azf_value_data(v, &len);
        return make_datum(text(data, len), kind);
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM:
        data = API->azf_value_data(v, &len);
        return make_datum(PyBytes_FromStringAndSize(data, (Py_ssize_t)len), AZF_VALUE_BYTES);
    case AZF_VALUE_INT:
        return make_datum(PyLong_FromLongLong(API->azf_value_int(v)), kind);
    case AZF_VALUE_DOUBLE:
        return make_datum(PyFloat_FromDouble(API->azf_value_double(v)), kind);
    case AZF_VALUE_HTTP:
        return http_to_py(v);
    case AZF_VALUE_MODEL_BINDING_DATA:
        return make_datum(mbd_to_ns(v), kind);
    case AZF_VALUE_COLLECTION_BYTES:
    case AZF_VALUE_COLLECTION_STRING:
    case AZF_VALUE_COLLECTION_DOUBLE:
    case AZF_VALUE_COLLECTION_SINT64:
    case AZF_VALUE_COLLECTION_MODEL_BINDING_DATA: {
        size_t n = API->azf_value_count(v);
        PyObject *list = PyList_New((Py_ssize_t)n);
        int attr = A_MBD;
        for (size_t i = 0; list && i < n; i++) {
            const azf_value *it = API->azf_value_item(v, i);
            PyObject *o;
            if (kind == AZF_VALUE_COLLECTION_BYTES) {
                data = API->azf_value_data(it, &len);
                o = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
            } else if (kind == AZF_VALUE_COLLECTION_STRING) {
                data = API->azf_value_data(it, &len);
                o = text(data, len);
            } else if (kind == AZF_VALUE_COLLECTION_DOUBLE) {
                o = PyFloat_FromDouble(API->azf_value_double(it));
            } else if (kind == AZF_VALUE_COLLECTION_SINT64) {
                o = PyLong_FromLongLong(API->azf_value_int(it));
            } else {
                o = mbd_to_ns(it);
            }
            if (!o)
                Py_CLEAR(list);
            else
                PyList_SET_ITEM(list, (Py_ssize_t)i, o);
        }
        if (kind == AZF_VALUE_COLLECTION_BYTES)
            attr = A_BYTES;
        else if (kind == AZF_VALUE_COLLECTION_STRING)
            attr = A_STRING;
        else if (kind == AZF_VALUE_COLLECTION_DOUBLE)
            attr = A_DOUBLE;
        else if (kind == AZF_VALUE_COLLECTION_SINT64)
            attr = A_SINT64;
        return make_datum(make_ns1(attr, list), kind);
    }
    default:
        Py_RETURN_NONE;
    }
}

static PyObject *map_to_py(const azf_value_map *m)
{
    PyObject *d = PyDict_New();
    size_t n = API->azf_value_map_count(m);
    for (size_t i = 0; d && i < n; i++) {
        const char *key;
        const azf_value *v = API->azf_value_map_at(m, i, &key);
        PyObject *k = ctext(key);
        PyObject *pv = value_to_py(v);
        if (!k || !pv || PyDict_SetItem(d, k, pv) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(pv);
    }
    return d;
}

static PyObject *attrs_to_py(const azf_value_map *m)
{
    PyObject *d = PyDict_New();
    size_t n = API->azf_value_map_count(m);
    for (size_t i = 0; d && i < n; i++) {
        const char *key;
        size_t len = 0;
        const azf_value *v = API->azf_value_map_at(m, i, &key);
        const char *s = API->azf_value_data(v, &len);
        PyObject *k = ctext(key), *pv = text(s, len);
        if (!k || !pv || PyDict_SetItem(d, k, pv) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(pv);
    }
    return d;
}

/* The call's arguments after the runner: (cap, invocation_id, {name: Datum},
 * {key: Datum} | None, (parent, state, {attrs}), (count, max, message, stack) | None).
 * GIL and the entry lock held (the invocation is running). Steals cap. */
static PyObject *call_args(azf__py_entry *e, PyObject *cap)
{
    azf_invocation *inv = e->inv;
    int32_t rc = 0, max = 0;
    const char *msg = NULL, *stack = NULL;
    PyObject *retry;
    if (API->azf_invocation_retry_context(inv, &rc, &max, &msg, &stack))
        retry = Py_BuildValue("(iiNN)", rc, max, ctext(msg), ctext(stack));
    else
        retry = Py_NewRef(Py_None);
    PyObject *md = e->func->needs_metadata ? map_to_py(API->azf_invocation_trigger_metadata(inv))
                                           : Py_NewRef(Py_None);
    return Py_BuildValue("(NNNNNN)", cap, ctext(API->azf_invocation_id(inv)),
                         map_to_py(API->azf_invocation_inputs(inv)), md,
                         Py_BuildValue("(NNN)", ctext(API->azf_invocation_trace_parent(inv)),
                                       ctext(API->azf_invocation_trace_state(inv)),
                                       attrs_to_py(API->azf_invocation_trace_attributes(inv))),
                         retry);
}

/* A new capsule for e (one more reference), or NULL. */
static PyObject *entry_capsule(azf__py_entry *e)
{
    atomic_fetch_add(&e->refs, 1);
    PyObject *cap = PyCapsule_New(e, ENTRY_CAPSULE, capsule_free);
    if (!cap)
        entry_unref(e);
    return cap;
}

/* ------------------------------------------------------------------ Python -> values */

static int set_err(char *err, size_t n, const char *msg)
{
    snprintf(err, n, "%s", msg);
    return -1;
}

static int raw_to_value(PyObject *raw, azf_value **out, char *err, size_t errn);

/* (KIND_HTTP, status, [(name, value)], body_raw, [cookie tuples]) */
static int http_to_value(PyObject *raw, azf_value **out, char *err, size_t errn)
{
    PyObject *status, *headers, *body, *cookies;
    if (!PyArg_ParseTuple(raw, "iOO!OO!", &(int){0}, &status, &PyList_Type, &headers, &body,
                          &PyList_Type, &cookies))
        return -1;
    azf_value *h = NULL;
    if (API->azf_value_new_http(&h) < 0)
        return set_err(err, errn, "MemoryError: out of memory");
    const char *st = PyUnicode_AsUTF8(status);
    if (!st || API->azf_value_http_set_status_code(h, st) < 0)
        goto bad;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(headers); i++) {
        const char *k, *v;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(headers, i), "ss", &k, &v) ||
            API->azf_value_http_set(h, AZF_HTTP_HEADERS, k, v) < 0)
            goto bad;
    }
    if (body != Py_None) {
        azf_value *bv = NULL;
        if (raw_to_value(body, &bv, err, errn) < 0)
            goto bad;
        if (bv && API->azf_value_http_set_body(h, bv) < 0) {
            API->azf_value_free(bv);
            goto bad;
        }
    }
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(cookies); i++) {
        const char *name, *value, *domain, *path;
        PyObject *expires, *max_age;
        int secure, http_only, same_site;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(cookies, i), "sszzOppiO", &name, &value, &domain,
                              &path, &expires, &secure, &http_only, &same_site, &max_age))
            goto bad;
        azf_cookie *c = NULL;
        if (API->azf_cookie_new(&c, name, value) < 0)
            goto bad;
        int rc = API->azf_cookie_set_domain(c, domain) | API->azf_cookie_set_path(c, path) |
                 API->azf_cookie_set_same_site(c, same_site) |
                 API->azf_cookie_set_secure(c, secure) |
                 API->azf_cookie_set_http_only(c, http_only);
        if (expires != Py_None)
            rc |= API->azf_cookie_set_expires(c, PyLong_AsLongLong(expires), 0);
        if (max_age != Py_None)
            rc |= API->azf_cookie_set_max_age(c, PyFloat_AsDouble(max_age));
        if (rc < 0 || PyErr_Occurred() || API->azf_value_http_add_cookie(h, c) < 0) {
            API->azf_cookie_free(c);
            goto bad;
        }
    }
    *out = h;
    return 0;
bad:
    API->azf_value_free(h);
    if (!err[0]) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyObject *s = v ? PyObject_Str(v) : NULL;
        snprintf(err, errn, "TypeError: invalid HTTP response: %s",
                 s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "bad value");
        PyErr_Clear();
        Py_XDECREF(s);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    return -1;
}

/* A raw output (None or (kind, value, ...)) -> azf_value (NULL for None). GIL held. */
static int raw_to_value(PyObject *raw, azf_value **out, char *err, size_t errn)
{
    *out = NULL;
    if (raw == Py_None)
        return 0;
    int kind = -1;
    if (PyTuple_Check(raw) && PyTuple_GET_SIZE(raw) >= 2)
        kind = (int)PyLong_AsLong(PyTuple_GET_ITEM(raw, 0));
    PyErr_Clear();
    PyObject *v = kind >= 0 ? PyTuple_GET_ITEM(raw, 1) : NULL;
    int rc = 0;
    switch (kind) {
    case AZF_VALUE_HTTP:
        return http_to_value(raw, out, err, errn);
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON: {
        Py_ssize_t n;
        const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &n) : NULL;
        if (!s) {
            PyErr_Clear();
            return set_err(err, errn, "TypeError: a string output is not valid text");
        }
        rc = API->azf_value_new_data(out, kind, s, (size_t)n);
        break;
    }
    case AZF_VALUE_BYTES:
        if (!PyBytes_Check(v))
            return set_err(err, errn, "TypeError: the adapter produced a bad output");
        rc = API->azf_value_new_data(out, kind, PyBytes_AS_STRING(v), (size_t)PyBytes_GET_SIZE(v));
        break;
    case AZF_VALUE_INT: {
        long long i = PyLong_Check(v) ? PyLong_AsLongLong(v) : -1;
        if (!PyLong_Check(v) || (i == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return set_err(err, errn, "OverflowError: int output does not fit in 64 bits");
        }
        rc = API->azf_value_new_int(out, i);
        break;
    }
    case AZF_VALUE_DOUBLE:
        if (!PyFloat_Check(v))
            return set_err(err, errn, "TypeError: the adapter produced a bad output");
        rc = API->azf_value_new_double(out, PyFloat_AS_DOUBLE(v));
        break;
    default:
        return set_err(err, errn, "TypeError: the adapter produced a bad output");
    }
    return rc < 0 ? set_err(err, errn, "MemoryError: out of memory") : 0;
}

/* *len (when not NULL): its length; a Python str may hold NUL. */
static char *utf8_dup(PyObject *s, size_t *len)
{
    Py_ssize_t n;
    const char *p = s && PyUnicode_Check(s) ? PyUnicode_AsUTF8AndSize(s, &n) : NULL;
    if (!p) {
        PyErr_Clear();
        return NULL;
    }
    char *d = host->malloc((size_t)n + 1);
    if (d) {
        memcpy(d, p, (size_t)n);
        d[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return d;
}

/* The runner's return value -> an outcome (GIL held; nothing of r is kept). */
static void outcome_from_py(PyObject *r, outcome *o)
{
    memset(o, 0, sizeof *o);
    o->how = END_FAIL;
    long how = -1;
    if (r && PyTuple_Check(r) && PyTuple_GET_SIZE(r) == 3)
        how = PyLong_AsLong(PyTuple_GET_ITEM(r, 0));
    PyErr_Clear();
    if (how == END_CANCEL) {
        o->how = END_CANCEL;
        return;
    }
    if (how == END_FAIL) {
        o->message = utf8_dup(PyTuple_GET_ITEM(r, 1), &o->message_len);
        o->stack = utf8_dup(PyTuple_GET_ITEM(r, 2), &o->stack_len);
        if (!o->message)
            set_err(o->err, sizeof o->err,
                    "Unhandled exception in function. Could not serialize original exception "
                    "message.");
        return;
    }
    PyObject *outputs = how == END_OK ? PyTuple_GET_ITEM(r, 1) : NULL;
    if (!outputs || !PyList_Check(outputs)) {
        set_err(o->err, sizeof o->err, "TypeError: the adapter produced a bad output");
        return;
    }
    size_t n = (size_t)PyList_GET_SIZE(outputs);
    if (n) {
        o->names = host->malloc(n * sizeof *o->names);
        o->outs = host->malloc(n * sizeof *o->outs);
        if (!o->names || !o->outs) {
            set_err(o->err, sizeof o->err, "MemoryError: out of memory");
            return;
        }
        memset(o->names, 0, n * sizeof *o->names);
        memset(o->outs, 0, n * sizeof *o->outs);
        o->n_out = n;
    }
    for (size_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(outputs, (Py_ssize_t)i);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !(o->names[i] = utf8_dup(PyTuple_GET_ITEM(item, 0), NULL))) {
            set_err(o->err, sizeof o->err, "TypeError: the adapter produced a bad output");
            return;
        }
        if (raw_to_value(PyTuple_GET_ITEM(item, 1), &o->outs[i], o->err, sizeof o->err) < 0)
            return;
    }
    if (raw_to_value(PyTuple_GET_ITEM(r, 2), &o->ret, o->err, sizeof o->err) < 0)
        return;
    o->how = END_OK;
}

/* ------------------------------------------------------------------ the pool */

static void describe_error(outcome *o, const char *what)
{
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    PyObject *s = v ? PyObject_Str(v) : NULL;
    const char *name = t ? ((PyTypeObject *)t)->tp_name : "RuntimeError";
    const char *dot = strrchr(name, '.');
    snprintf(o->err, sizeof o->err, "%s: %s", dot ? dot + 1 : name,
             s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : what);
    PyErr_Clear();
    Py_XDECREF(s);
    Py_XDECREF(t);
    Py_XDECREF(v);
    Py_XDECREF(tb);
}

/* The GIL for one job: a pool thread keeps its thread state (ts); any other
 * thread (azf_invocation_run's caller) goes through PyGILState. */
typedef struct gil_hold {
    PyThreadState **ts;
    PyGILState_STATE state;
    long long waited_ns; /* a pool thread's wait for the GIL */
} gil_hold;

static void gil_take(gil_hold *g)
{
    if (g->ts) {
        long long t0 = now_ns();
        PyEval_RestoreThread(*g->ts);
        g->waited_ns = now_ns() - t0;
    } else
        g->state = PyGILState_Ensure();
}

static void gil_drop(gil_hold *g)
{
    if (g->ts)
        *g->ts = PyEval_SaveThread();
    else
        PyGILState_Release(g->state);
}

/* One sync invocation: the one GIL take. ts: the pool thread's state, or NULL.
 * Returns how long the pool thread waited for the GIL. */
static long long run_job(azf__py_runtime *rt, azf__py_entry *e, PyThreadState **ts)
{
    outcome o = {.how = END_FAIL};
    gil_hold gil = {.ts = ts};
    pthread_mutex_lock(&e->lock);
    if (e->done) {
        pthread_mutex_unlock(&e->lock);
        return 0;
    }
    if (API->azf_invocation_cancel_requested(e->inv)) {
        pthread_mutex_unlock(&e->lock);
        entry_end(rt, e, END_CANCEL, NULL);
        return 0;
    }
    gil_take(&gil);
    if (!e->func) { /* not known when it was queued */
        const azf_function *fn = API->azf_invocation_function(e->inv);
        azf__py_func *f = func_resolve(rt, API->azf_function_id(fn), API->azf_function_name(fn));
        if (f && f->is_async) { /* to the loop after all */
            pthread_mutex_unlock(&e->lock);
            gil_drop(&gil);
            pthread_mutex_lock(&rt->lock);
            e->func = f;
            int rc = push_job(rt, JOB_INVOKE, e, 1);
            pthread_mutex_unlock(&rt->lock);
            if (rc == 0)
                wake_loop(rt);
            else
                entry_end(rt, e, END_FAIL, "MemoryError: out of memory");
            return gil.waited_ns;
        }
        if (!f)
            describe_error(&o, "the function is not loaded");
        pthread_mutex_lock(&rt->lock);
        e->func = f;
        pthread_mutex_unlock(&rt->lock);
    }
    PyObject *args = NULL, *cap = e->func ? entry_capsule(e) : NULL;
    if (cap)
        args = call_args(e, cap);
    pthread_mutex_unlock(&e->lock);
    if (args) {
        PyObject *r = PyObject_Call(e->func->runner, args, NULL);
        if (r)
            outcome_from_py(r, &o);
        else
            describe_error(&o, "the adapter failed");
        Py_XDECREF(r);
        Py_DECREF(args);
    } else if (e->func) {
        describe_error(&o, "out of memory");
    }
    gil_drop(&gil);
    entry_finish(rt, e, &o);
    return gil.waited_ns;
}

/* A thread that just finished a job watches for the next one this long before
 * it sleeps on its condition variable: one request after another (one in
 * flight) then finds it awake, without a futex wake-up (in a VM, waking a
 * thread on an idle core costs about as much as the whole call). It yields
 * between looks, so it takes the core from no one. Bounded, and only after a
 * job, so an idle pool uses no CPU; one thread at a time (rt->spinning). */
#define SPIN_NS 100000LL

static void spin_until_woken(azf__py_thread *self)
{
    long long until = now_ns() + SPIN_NS;
    while (!atomic_load_explicit(&self->woken, memory_order_acquire) && now_ns() < until)
        sched_yield();
}

/* 1 when the thread is on a CPU or waiting for one (state R in
 * /proc/self/task/TID/stat); 0 when it sleeps (on I/O, a lock, the GIL) or its
 * state cannot be read. */
static int thread_runnable(pid_t tid)
{
    char path[64], buf[256];
    snprintf(path, sizeof path, "/proc/self/task/%d/stat", (int)tid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* after "TID (name)"; a name may hold ')' */
    return p && p[1] == ' ' && p[2] == 'R';
}

/* The standby's question (pool_dispatch's comment), rt->lock held; the lock
 * is dropped while the busy threads' states are read. */
static int standby_steps_in(azf__py_runtime *rt)
{
    if (!rt->busy && !rt->waking)
        return 1;
    long long seen = rt->progress_ns, still = now_ns() - seen;
    if (still < SERVING_NS)
        return 0;
    if (still >= SWITCH_NS)
        return 1;
    pid_t tids[64]; /* the first 64 busy threads: one seen running is enough */
    int n = 0;
    for (azf__py_thread *t = rt->busy_threads; t && n < 64; t = t->busy_next)
        tids[n++] = t->tid;
    int runs = rt->waking > 0; /* one on its way takes the job when it runs */
    pthread_mutex_unlock(&rt->lock);
    for (int i = 0; i < n && !runs; i++)
        runs = thread_runnable(tids[i]);
    pthread_mutex_lock(&rt->lock);
    return !runs && rt->progress_ns == seen;
}

static void *pool_run(azf__py_runtime *rt, int standby)
{
    azf__py_thread self = {.counted = 1, .tid = gettid()}; /* counted when it was started */
    pthread_cond_init(&self.wake, NULL);
    int ran = 0;       /* a job since this thread last went idle */
    int step_back = 0; /* leave the queue to the busy threads (CONVOY_NS) */
    pthread_mutex_lock(&rt->lock);
    int stopping = rt->stopping;
    pthread_mutex_unlock(&rt->lock);
    PyGILState_STATE gil = PyGILState_UNLOCKED;
    PyThreadState *ts = NULL;
    if (!stopping) {
        gil = PyGILState_Ensure(); /* this thread's Python state, kept while it lives */
        ts = PyEval_SaveThread();
    }
    pthread_mutex_lock(&rt->lock);
    if (standby) { /* started to stand by (pool_dispatch) */
        rt->standby_starting = 0;
        self.counted = 0;
        if (!rt->standby) {
            self.standby = 1;
            rt->standby = &self;
        }
    }
    while (!rt->stopping) {
        if (self.counted) { /* on its way no more */
            rt->waking--;
            self.counted = 0;
        }
        if (step_back && rt->head && !rt->standby && !rt->standby_starting) {
            self.standby = 1; /* someone must watch them */
            rt->standby = &self;
        }
        if (self.standby) { /* watch the queue (pool_dispatch) */
            while (!rt->stopping && rt->head && !standby_steps_in(rt)) {
                struct timespec until;
                deadline_after_ns(&until, SERVING_NS);
                while (!rt->stopping && rt->head &&
                       pthread_cond_timedwait(&self.wake, &rt->lock, &until) != ETIMEDOUT)
                    ;
            }
            if (rt->stopping)
                break;
            self.standby = 0;
            rt->standby = NULL;
            step_back = 0;
        }
        azf__py_job *j = step_back ? NULL : pop_job(&rt->head, &rt->tail);
        step_back = 0;
        if (j) {
            rt->busy++;
            self.busy_next = rt->busy_threads;
            rt->busy_threads = &self;
            rt->progress_ns = now_ns();
            int spawn = pool_dispatch(rt); /* more queued: maybe one more thread */
            pthread_mutex_unlock(&rt->lock);
            if (spawn)
                pool_spawn(rt, spawn);
            azf__py_entry *e = j->entry;
            host->free(j);
            long long waited = run_job(rt, e, &ts);
            entry_unref(e);
            ran = 1;
            pthread_mutex_lock(&rt->lock);
            rt->busy--;
            for (azf__py_thread **p = &rt->busy_threads; *p; p = &(*p)->busy_next)
                if (*p == &self) {
                    *p = self.busy_next;
                    break;
                }
            rt->progress_ns = now_ns();
            step_back = rt->busy && waited >= CONVOY_NS;
            continue;
        }
        if (rt->threads > rt->max_threads) /* the pool shrank */
            break;
        atomic_store(&self.woken, 0);
        /* Most recently idle first; a thread that ran no job since it last went
         * idle (it stood by) goes last: the next job is the hot thread's. */
        int hot = ran;
        ran = 0;
        azf__py_thread **at = &rt->idle_threads;
        while (!hot && *at)
            at = &(*at)->next;
        self.next = *at;
        *at = &self;
        if (hot && !rt->spinning) {
            rt->spinning = self.spinning = 1;
            pthread_mutex_unlock(&rt->lock);
            spin_until_woken(&self);
            pthread_mutex_lock(&rt->lock);
            rt->spinning = self.spinning = 0;
        }
        while (!atomic_load(&self.woken))
            pthread_cond_wait(&self.wake, &rt->lock);
    }
    if (self.counted)
        rt->waking--;
    if (self.standby)
        rt->standby = NULL;
    rt->threads--;
    pthread_cond_broadcast(&rt->idle);
    pthread_mutex_unlock(&rt->lock);
    if (ts) {
        PyEval_RestoreThread(ts);
        PyGILState_Release(gil);
    }
    pthread_cond_destroy(&self.wake);
    return NULL;
}

static void *pool_main(void *arg)
{
    return pool_run(arg, 0);
}

static void *pool_main_standby(void *arg)
{
    return pool_run(arg, 1);
}

/* ------------------------------------------------------------------ the native module */

/* take() -> [(runner, cap, invocation_id, inputs, metadata, trace, retry) |
 * (invocation_id,)]: async invocations to start and tasks to cancel (loop thread). */
static PyObject *n_take(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    azf__py_runtime *rt = N.rt;
    uint64_t count;
    if (read(rt->efd, &count, sizeof count) < 0 && errno != EAGAIN)
        return PyErr_SetFromErrno(PyExc_OSError);
    pthread_mutex_lock(&rt->lock);
    azf__py_job *jobs = rt->loop_head;
    rt->loop_head = rt->loop_tail = NULL;
    pthread_mutex_unlock(&rt->lock);
    PyObject *list = PyList_New(0);
    for (azf__py_job *j = jobs, *next; j; j = next) {
        next = j->next;
        azf__py_entry *e = j->entry;
        PyObject *t = NULL;
        int cancelled = 0;
        Py_BEGIN_ALLOW_THREADS;
        pthread_mutex_lock(&e->lock);
        Py_END_ALLOW_THREADS;
        if (!e->done) {
            if (j->kind == JOB_CANCEL) {
                t = Py_BuildValue("(N)", ctext(API->azf_invocation_id(e->inv)));
            } else if (API->azf_invocation_cancel_requested(e->inv)) {
                cancelled = 1;
            } else {
                PyObject *cap = entry_capsule(e);
                PyObject *a = cap ? call_args(e, cap) : NULL;
                PyObject *head = a ? Py_BuildValue("(O)", e->func->runner) : NULL;
                t = head ? PySequence_Concat(head, a) : NULL;
                Py_XDECREF(head);
                Py_XDECREF(a);
            }
        }
        pthread_mutex_unlock(&e->lock);
        if (cancelled) {
            Py_BEGIN_ALLOW_THREADS;
            entry_end(rt, e, END_CANCEL, NULL);
            Py_END_ALLOW_THREADS;
        }
        if (t && list && PyList_Append(list, t) < 0)
            Py_CLEAR(list);
        Py_XDECREF(t);
        entry_unref(e);
        host->free(j);
    }
    return list;
}

/* finish(cap, outcome) -> True if this call completed the invocation (tasks). */
static PyObject *n_finish(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *cap, *result;
    if (!PyArg_ParseTuple(args, "OO", &cap, &result))
        return NULL;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    outcome o;
    outcome_from_py(result, &o);
    int done;
    Py_BEGIN_ALLOW_THREADS;
    done = entry_finish(N.rt, e, &o);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(done);
}

/* log(cap, level, category, message) -> True if delivered (the invocation runs). */
static PyObject *n_log(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *cap;
    int level;
    const char *category, *message;
    Py_ssize_t message_len; /* the message may hold NUL: it reaches the host whole */
    if (!PyArg_ParseTuple(args, "Oiss#", &cap, &level, &category, &message, &message_len))
        return NULL;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    int ok = 0;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&e->lock);
    if (!e->done)
        ok =
            API->azf_invocation_log_len(e->inv, level, category, message, (size_t)message_len) == 0;
    pthread_mutex_unlock(&e->lock);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(ok);
}

/* syslog(level, category, message): the runtime's System log callback. */
static PyObject *n_syslog(PyObject *self, PyObject *args)
{
    (void)self;
    int level;
    const char *category, *message;
    if (!PyArg_ParseTuple(args, "iss", &level, &category, &message))
        return NULL;
    azf__py_runtime *rt = N.rt;
    if (rt && rt->log) {
        Py_BEGIN_ALLOW_THREADS;
        rt->log(level, category, message, rt->log_user_data);
        Py_END_ALLOW_THREADS;
    }
    Py_RETURN_NONE;
}

/* set_thread_count(n): PYTHON_THREADPOOL_THREAD_COUNT (start, env reload).
 * Surplus idle threads exit; busy ones when they are done. */
static PyObject *n_set_thread_count(PyObject *self, PyObject *arg)
{
    (void)self;
    long n = PyLong_AsLong(arg);
    if (n < 1) {
        if (!PyErr_Occurred())
            PyErr_SetString(PyExc_ValueError, "the thread count must be >= 1");
        return NULL;
    }
    azf__py_runtime *rt = N.rt;
    pthread_mutex_lock(&rt->lock);
    rt->max_threads = n > 1000000 ? 1000000 : (int)n;
    for (int surplus = rt->threads - rt->max_threads; surplus > 0 && rt->idle_threads; surplus--) {
        azf__py_thread *t = rt->idle_threads;
        rt->idle_threads = t->next;
        thread_wake(t);
    }
    pthread_mutex_unlock(&rt->lock);
    Py_RETURN_NONE;
}

/* kinds() -> {name: AZF_VALUE_*}: the marshaller's kind table. */
static PyObject *n_kinds(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    PyObject *d = PyDict_New();
    for (int k = 0; d && k <= AZF_VALUE_COLLECTION_MODEL_BINDING_DATA; k++) {
        PyObject *v = PyLong_FromLong(k);
        if (!v || PyDict_SetItemString(d, API->azf_value_kind_name(k), v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    return d;
}

/* setup(Datum, SimpleNamespace) -> the eventfd to watch. */
static PyObject *n_setup(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *datum, *ns;
    if (!PyArg_ParseTuple(args, "OO", &datum, &ns))
        return NULL;
    Py_XSETREF(N.datum, Py_NewRef(datum));
    Py_XSETREF(N.namespace, Py_NewRef(ns));
    return PyLong_FromLong(N.rt->efd);
}

static PyMethodDef methods[] = {
    {"setup", n_setup, METH_VARARGS, NULL},
    {"kinds", n_kinds, METH_NOARGS, NULL},
    {"set_thread_count", n_set_thread_count, METH_O, NULL},
    {"take", n_take, METH_NOARGS, NULL},
    {"finish", n_finish, METH_VARARGS, NULL},
    {"log", n_log, METH_VARARGS, NULL},
    {"syslog", n_syslog, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static void module_free(void *m)
{
    if (m != N.module) /* replaced by a later runtime's (extension mode) */
        return;
    N.module = NULL;
    Py_CLEAR(N.datum);
    Py_CLEAR(N.namespace);
    for (size_t i = 0; i < sizeof N.kind / sizeof N.kind[0]; i++)
        Py_CLEAR(N.kind[i]);
    for (int i = 0; i < A_COUNT; i++)
        Py_CLEAR(N.s[i]);
    N.rt = NULL;
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_azfunc_native", NULL, -1, methods, NULL, NULL, NULL, module_free,
};

PyObject *azf__py_native_module(azf__py_runtime *rt)
{
    N.rt = rt;
    for (int i = 0; i < A_COUNT; i++)
        if (!N.s[i] && !(N.s[i] = PyUnicode_InternFromString(a_text[i])))
            return NULL;
    /* Datum types are the kind names, but a stream reads as bytes. */
    for (int k = 0; k <= AZF_VALUE_COLLECTION_MODEL_BINDING_DATA; k++)
        if (!N.kind[k] && !(N.kind[k] = PyUnicode_InternFromString(API->azf_value_kind_name(
                                k == AZF_VALUE_STREAM ? AZF_VALUE_BYTES : k))))
            return NULL;
    return N.module = PyModule_Create(&module_def);
}
