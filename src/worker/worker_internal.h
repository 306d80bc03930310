/* Internal interface of the worker layer. The host conversation is split by area, one
 * file each, behind one dispatch table (dispatch.c):
 *   worker.c         connect, the receive path, send, log
 *   dispatch.c       the table (which handler, on which thread) and the app thread
 *   lifecycle.c      init, status, environment reload, terminate; the capabilities
 *   functions.c      metadata, load, failed loads; RpcFunctionMetadata <-> registry
 *   invocations.c    invoke, cancel, in-flight invocations, drain; InvocationRequest/
 *                    InvocationResponse <-> azf_invocation
 *   shared_memory.c  inputs from and outputs to shared memory, CloseSharedMemoryResources
 * Every file includes this header only (plus shmem.h for the map files), so no file
 * includes another's: calls go from dispatch to the areas and from the areas to
 * worker.c's send and log. Messages in and out go through the codec (codec_internal.h). */
#ifndef AZF_WORKER_INTERNAL_H
#define AZF_WORKER_INTERNAL_H

#include "azfunc/worker.h"
#include "codec/codec_internal.h"
#include "common/common_internal.h"
#include "marshal/marshal_pb.h"
#include "registry/registry_internal.h"
#include "transport/transport_internal.h"

#include <pthread.h>
#include <stdatomic.h>

/* Limits on one message from the host (a hostile or broken host must not hold the I/O
 * thread): a function has a handful of bindings; the real host sends tens. */
#define AZF__WORKER_MAX_BINDINGS 1024
#define AZF__WORKER_MAX_TRIGGER_METADATA 1024
/* A host that stops reading: past this many bytes waiting to go out, invocation
 * responses are replaced by a short Failure and logs are dropped, so memory stays
 * bounded while every invocation still gets exactly one response. Past twice as many
 * (the host goes on sending and never reads), the worker ends the conversation as a
 * gRPC server does with RESOURCE_EXHAUSTED: azf_worker_run returns AZF_E_TOOBIG. */
#define AZF__WORKER_SEND_QUEUE_MAX ((size_t)64 << 20)

struct azf_worker_provider {
    azf_worker_index_fn index;
    azf_worker_load_fn load;
    azf_worker_reload_fn reload;
    azf_worker_drain_fn drain;
    azf_worker_init_fn init;
    azf_handler v1_handler;
    int has_v1_handler;
    void *v1_user_data;
};

struct azf_worker_opts {
    char *uri, *worker_id, *request_id;
    char *runtime_name, *runtime_version;
    char *init_error; /* WorkerInitResponse fails with it (azf_worker_opts_set_init_error) */
    azf_worker_provider provider;
    void *provider_user_data;
    azf_registry *reg;
    size_t max_message_length;
    azf_transport_opts *transport;
    azf__errmsg err;
};

typedef struct azf__flights azf__flights; /* invocations in flight (invocations.c) */
typedef struct azf__job azf__job;         /* a request for the app thread (dispatch.c) */
typedef struct azf__failed azf__failed;   /* a load that failed (functions.c) */
typedef struct azf__shm_map azf__shm_map; /* an output map this worker wrote */

struct azf_worker {
    azf_worker_opts opts;
    azf_transport_opts *transport;
    azf_driver *driver;
    uint64_t stream;
    atomic_int live;        /* StartStream queued: logs may be sent */
    atomic_int terminating; /* 1 WorkerTerminate, 2 azf_worker_stop, 3 stream over */
    atomic_int shutdown_started;
    int exhausted; /* ended: the host stopped reading (I/O thread) */
    /* Without a connection (fuzz_worker): where sent messages go instead. */
    void (*sink)(const uint8_t *data, size_t len, void *ud);
    void *sink_ud;
    int ran;
    int stream_closed, close_status;
    char close_msg[256];
    azf__errmsg err;

    azf_registry *reg;
    int own_reg;
    azf__flights *flights;
    pthread_mutex_t lock; /* guards jobs, failed, app_dir, shm_maps */
    pthread_cond_t cond;
    azf__job *jobs, **jobs_tail;
    int app_quit, app_started, drained;
    pthread_t app_thread;
    char *app_dir;         /* WorkerInitRequest / env reload function_app_directory */
    azf__failed *failed;   /* loads that failed: invocations fail with the error */
    int indexed, index_rc; /* app thread only */
    char *index_msg, *index_stack;
    azf__shm_map *shm_maps;    /* output maps this worker wrote */
    atomic_int shm_data_cache; /* host capability FunctionDataCache: keep the files */
};

/* A handler: answers its request exactly once (maybe later). 0 or an AZF_E_* code. */
typedef int (*azf__worker_handler)(azf_worker *w, const azf__msg *m);

/* ---- worker.c ------------------------------------------------------------------- */
/* Sends a message (any thread) through the codec. An empty request_id is stamped with
 * the worker's --requestId. Returns 0 or a negative AZF_E_* code. */
int azf__worker_send(azf_worker *w, azf__msg *m);
/* The one RpcLog builder and sender (any thread): a User log of invocation_id, or a
 * System log when it is NULL (category NULL: "azfunc.worker"). text[0..len) may hold
 * NUL (text[len] must be NUL): the host receives it whole. Dropped (best effort) before
 * StartStream and while the host is not reading. */
void azf__worker_send_log(azf_worker *w, const char *invocation_id, int level, const char *category,
                          const char *text, size_t len);
/* Sends a System RpcLog (any thread) and logs it locally. */
void azf__worker_log(azf_worker *w, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Marks the end (why: 1 WorkerTerminate, 2 azf_worker_stop) and closes the stream
 * after the queued messages, once. */
void azf__worker_begin_shutdown(azf_worker *w, int why, uint32_t timeout_ms);
/* 1 when more than AZF__WORKER_SEND_QUEUE_MAX bytes wait to go out (any thread). */
int azf__worker_congested(azf_worker *w);
/* Sends Failure with message/stack for an invocation (no allocation). */
int azf__worker_send_invocation_failure(azf_worker *w, const char *invocation_id,
                                        const char *message, const char *stack);

/* The receive path: one message from the host (I/O thread). */
void azf__worker_receive(azf_worker *w, const uint8_t *data, size_t len);
/* For tests/fuzz/fuzz_worker.c: a worker that is never connected sends every message
 * (packed) to sink, and runs on the calling thread what would go to the app thread
 * (azf__worker_run_jobs). Call before anything is received. */
void azf__worker_set_sink(azf_worker *w, void (*sink)(const uint8_t *data, size_t len, void *ud),
                          void *ud);

/* ---- dispatch.c ------------------------------------------------------------------ */
/* Routes one decoded message (I/O thread). Returns 1 when it kept m (freed later by the
 * app thread), 0 when the caller frees it. */
int azf__worker_dispatch(azf_worker *w, azf__msg *m);
int azf__worker_app_init(azf_worker *w);  /* in azf_worker_new */
void azf__worker_app_free(azf_worker *w); /* in azf_worker_free */
int azf__worker_app_start(azf_worker *w); /* starts the app thread */
/* After the conversation: drains what still runs, stops and joins the app thread. */
void azf__worker_app_finish(azf_worker *w);
/* Runs the queued app-thread requests on the calling thread (a worker with a sink). */
void azf__worker_run_jobs(azf_worker *w);

/* ---- lifecycle.c ------------------------------------------------------------------ */
int azf__lifecycle_init(azf_worker *w, const azf__msg *m);      /* app thread */
int azf__lifecycle_status(azf_worker *w, const azf__msg *m);    /* I/O thread */
int azf__lifecycle_reload(azf_worker *w, const azf__msg *m);    /* app thread */
int azf__lifecycle_terminate(azf_worker *w, const azf__msg *m); /* app thread */

/* ---- functions.c ------------------------------------------------------------------ */
int azf__functions_metadata(azf_worker *w, const azf__msg *m); /* app thread */
int azf__functions_load(azf_worker *w, const azf__msg *m);     /* app thread */
/* The one failed-load lookup: 1 with copies of its message and stack (free both with
 * azf__free; either may be NULL when out of memory), 0 when function_id loaded fine. */
int azf__functions_failed(azf_worker *w, const char *function_id, char **message, char **stack);
void azf__functions_free(azf_worker *w);
/* A registry function as RpcFunctionMetadata: strings borrowed from fn, sub-messages
 * allocated (release with azf__function_metadata_clear). AZF_E_NOMEM. */
typedef AZF__PB(RpcFunctionMetadata) azf__pb_function_metadata;
int azf__function_to_pb(const azf_function *fn, azf__pb_function_metadata *md);
void azf__function_metadata_clear(azf__pb_function_metadata *md);

/* ---- invocations.c ---------------------------------------------------------------- */
int azf__invocations_invoke(azf_worker *w, const azf__msg *m); /* I/O thread */
int azf__invocations_cancel(azf_worker *w, const azf__msg *m); /* I/O thread */
int azf__invocations_init(azf_worker *w);
/* Detaches the in-flight records from w (late completions then send nothing); returns 1
 * when a handler still runs (it holds its function: the registry must stay). */
int azf__invocations_free(azf_worker *w);
/* Provider drain, then every invocation not answered by then gets a Failure (once). */
void azf__invocations_drain(azf_worker *w, uint32_t budget_ms);
/* An invocation from an InvocationRequest (inputs by binding name, trigger metadata,
 * trace and retry context). flags as for azf__value_from_pb. */
int azf__invocation_from_pb(azf_invocation **out, const azf_function *fn,
                            const AZF__PB(InvocationRequest) * req, int flags, azf__errmsg *err);
/* Fills *resp from a completed invocation: output_data (null outputs left out),
 * return_value (unset when null), result (Success, Failure with the exception,
 * Cancelled). Payloads are borrowed from the invocation. An output the host cannot take
 * turns the response into a Failure naming the binding. AZF_E_STATE when not completed,
 * AZF_E_NOMEM. Release with azf__invocation_response_clear. */
int azf__invocation_to_pb(const azf_invocation *inv, AZF__PB(InvocationResponse) * resp);
void azf__invocation_response_clear(AZF__PB(InvocationResponse) * resp);

/* ---- shared_memory.c ------------------------------------------------------------- */
int azf__shared_memory_close(azf_worker *w, const azf__msg *m); /* I/O thread */
/* *copy: r with its shared-memory inputs read into data bindings (shallow; free with
 * azf__shared_memory_free_inputs). On failure *text is an allocated "<Type>: <message>". */
int azf__shared_memory_inputs(const AZF__PB(InvocationRequest) * r,
                              AZF__PB(InvocationRequest) * copy, char **text);
void azf__shared_memory_free_inputs(AZF__PB(InvocationRequest) * copy,
                                    const AZF__PB(InvocationRequest) * r);
/* Sends resp, with large bytes/string outputs moved to shared memory when enabled. */
int azf__shared_memory_send_response(azf_worker *w, AZF__PB(InvocationResponse) * resp);
void azf__shared_memory_free(azf_worker *w);

#endif
