/* Shared between the plugin's files (plugin.c: interpreter, index, load;
 * invoke.c: invocations). Not part of the plugin ABI. */
#ifndef AZF_PYTHON_PLUGIN_INTERNAL_H
#define AZF_PYTHON_PLUGIN_INTERNAL_H

#include "python/plugin_abi.h"

#include <pthread.h>

extern const azf__py_host *azf__py_host_table;

typedef struct azf__py_entry azf__py_entry;
typedef struct azf__py_job azf__py_job;

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
    azf_python_log_fn log;
    void *log_user_data;

    /* Invocations: queued jobs (read by the asyncio loop thread when the
     * eventfd fires) and the in-flight list, under one lock. */
    pthread_mutex_t lock;
    pthread_cond_t idle; /* signalled when an invocation leaves the list */
    int efd;             /* eventfd, -1 before start */
    int draining;
    azf__py_job *head, *tail;
    azf__py_entry *inflight;
    size_t inflight_count;
};

/* invoke.c */
int azf__py_invoke_init(azf__py_runtime *rt); /* before the adapter import; no GIL needed */
/* After close; finalized: the embedded interpreter is gone, so entries still
 * referenced by (never destroyed) capsules are freed too. */
void azf__py_invoke_fini(azf__py_runtime *rt, int finalized);
PyObject *azf__py_native_module(azf__py_runtime *rt); /* GIL held; new reference */
int azf__py_invoke(azf__py_runtime *rt, azf_invocation *inv);
void azf__py_cancel(azf__py_runtime *rt, azf_invocation *inv);
int azf__py_drain(azf__py_runtime *rt, int timeout_ms);

#endif
