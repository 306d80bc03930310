/* Shared between the plugin's files (plugin.c: interpreter, index, load;
 * invoke.c: invocations). Not part of the plugin ABI. */
#ifndef AZF_PYTHON_PLUGIN_INTERNAL_H
#define AZF_PYTHON_PLUGIN_INTERNAL_H

#include "python/plugin_abi.h"

#include <pthread.h>

extern const azf__py_host *azf__py_host_table;

typedef struct azf__py_entry azf__py_entry;
typedef struct azf__py_job azf__py_job;
typedef struct azf__py_func azf__py_func;
typedef struct azf__py_thread azf__py_thread;

struct azf__py_runtime {
    int mode;
    PyThreadState *main_tstate; /* embedded: the initialising thread, GIL released */
    PyObject *common;           /* the adapter modules (_azfunc_common, ... */
    PyObject *indexing;         /* ..._azfunc_indexing, ... */
    PyObject *invocation;       /* ..._azfunc_invocation) */
    PyObject *telemetry;        /* _azfunc_telemetry (OpenTelemetry) */
    PyObject *httpstream;       /* _azfunc_httpstream (HTTP streaming) */
    PyObject *startup;          /* _azfunc_startup (init_app) */
    char *script_file_name;
    char *executable; /* sys.executable after start (embedded mode) */
    azf_python_log_fn log;
    void *log_user_data;

    /* Invocations (invoke.c), under one lock: the loaded functions, the sync
     * jobs (the pool's), the loop thread's jobs (async; read when the eventfd
     * fires), the in-flight list and the pool's threads. */
    pthread_mutex_t lock;
    pthread_cond_t idle; /* an invocation left the list, or a pool thread exited */
    int efd;             /* eventfd, -1 before start */
    int draining, stopping;
    azf__py_func *funcs;
    azf__py_job *head, *tail;
    azf__py_job *loop_head, *loop_tail;
    azf__py_entry *inflight;
    size_t inflight_count;
    azf__py_thread *idle_threads; /* most recently idle first */
    azf__py_thread *busy_threads; /* running a job (their scheduler state: invoke.c) */
    int threads, busy, max_threads;
    int waking;              /* pool threads signalled or started, not running yet */
    azf__py_thread *standby; /* the idle thread watching the queue, or NULL */
    int standby_starting;    /* a thread is being started to stand by */
    long long progress_ns;   /* when a pool thread last started or finished a job */
    int spinning;            /* an idle thread watching for a job before it sleeps */
};

/* invoke.c */
int azf__py_invoke_init(azf__py_runtime *rt); /* before the adapter import; no GIL needed */
/* After close: fails what is still in flight. finalized: the embedded
 * interpreter is gone, so entries still referenced by (never destroyed)
 * capsules are freed too. Returns 0 when pool threads that never returned
 * from their function still use rt (it must then stay allocated), else 1. */
int azf__py_invoke_fini(azf__py_runtime *rt, int finalized);
PyObject *azf__py_native_module(azf__py_runtime *rt); /* GIL held; new reference */
/* After a successful load (GIL held): the function's runner, kept for its
 * invocations. -1 with a Python error set. */
int azf__py_func_load(azf__py_runtime *rt, const char *function_id);
void azf__py_funcs_clear(azf__py_runtime *rt, int with_gil);
/* Close, first: no more invocations; idle pool threads exit. Returns the
 * number of pool threads still busy (abandoned). Takes no GIL itself. */
int azf__py_pool_stop(azf__py_runtime *rt);
int azf__py_invoke(azf__py_runtime *rt, azf_invocation *inv);
int azf__py_run(azf__py_runtime *rt, azf_invocation *inv); /* a sync function runs here */
void azf__py_cancel(azf__py_runtime *rt, azf_invocation *inv);
int azf__py_drain(azf__py_runtime *rt, int timeout_ms);

#endif
