/* Internal interface of the worker layer. */
#ifndef AZF_WORKER_INTERNAL_H
#define AZF_WORKER_INTERNAL_H

#include "FunctionRpc.pb-c.h"
#include "azfunc/worker.h"
#include "common/common_internal.h"
#include "registry/registry_internal.h"

#include <pthread.h>
#include <stdatomic.h>

/* Short names for the generated protobuf-c types. */
#define PB(name) AzureFunctionsRpcMessages__##name
#define PB_INIT(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__##NAME##__INIT
#define PB_CASE(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__CONTENT_##NAME
#define PB_SUCCESS AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Success
#define PB_FAILURE AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Failure
typedef PB(StreamingMessage) azf__msg;

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
    azf_worker_provider provider;
    void *provider_user_data;
    azf_registry *reg;
    size_t max_message_length;
    azf_transport_opts *transport;
    azf__errmsg err;
};

/* Invocations in flight, shared with their completion callbacks (app.c). */
typedef struct azf__flights azf__flights;

/* A request handed to the app thread (app.c). */
typedef struct azf__job azf__job;

struct azf_worker {
    azf_worker_opts opts;
    azf_transport_opts *transport;
    azf_driver *driver;
    uint64_t stream;
    atomic_int live;        /* StartStream queued: logs may be sent */
    atomic_int terminating; /* 1 WorkerTerminate, 2 azf_worker_stop, 3 stream over */
    atomic_int shutdown_started;
    int ran;
    int stream_closed, close_status;
    char close_msg[256];
    azf__errmsg err;

    /* The application side (app.c). */
    azf_registry *reg;
    int own_reg;
    azf__flights *flights;
    pthread_mutex_t lock; /* guards jobs, failed loads, app_dir */
    pthread_cond_t cond;
    azf__job *jobs, **jobs_tail;
    int app_quit, app_started, drained;
    pthread_t app_thread;
    char *app_dir;              /* WorkerInitRequest / env reload function_app_directory */
    struct azf__failed *failed; /* loads that failed: invocations fail with the error */
    int indexed, index_rc;      /* app thread only */
    char *index_msg, *index_stack;
    struct azf__shm_map *shm_maps; /* output maps this worker wrote (guarded by lock) */
    atomic_int shm_data_cache;     /* host capability FunctionDataCache: keep the files */
};

/* Sends a message on the stream (any thread). An empty request_id is stamped
 * with the worker's --requestId. Returns 0 or a negative AZF_E_* code. */
int azf__worker_send(struct azf_worker *w, azf__msg *m);

/* Sends a System RpcLog (any thread). */
void azf__worker_log(struct azf_worker *w, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Marks the end (why: 1 WorkerTerminate, 2 azf_worker_stop) and closes the stream
 * after the queued messages, once. */
void azf__worker_begin_shutdown(struct azf_worker *w, int why, uint32_t timeout_ms);

/* Routes one decoded message from the host (I/O thread). Returns 1 when it kept m
 * (freed later by the app thread), 0 when the caller frees it. */
int azf__worker_dispatch(struct azf_worker *w, azf__msg *m);

/* Fills a WorkerMetadata (strings borrowed from w; no allocation). */
void azf__worker_metadata(struct azf_worker *w, PB(WorkerMetadata) * md);

/* The capabilities of WorkerInitResponse (and of the env reload response). */
extern const char *const azf__worker_caps[][2];
extern const size_t azf__worker_ncaps;

/* ---- startup.c: WorkerInitRequest and the capabilities ------------------- */
#define AZF__CAPS_MAX 32
typedef struct azf__caps {
    size_t n;
    const char *kv[AZF__CAPS_MAX][2]; /* name, value: borrowed from the table or extra */
    azf_value_map *extra;             /* the provider's init callback's */
} azf__caps;
/* The fixed capabilities, then the provider init callback's for app_dir (app thread).
 * Returns 0 or the callback's error (message and stack may be set); c is always filled
 * (at least the fixed ones) and must be cleared. */
int azf__worker_caps_collect(struct azf_worker *w, const char *app_dir, azf__caps *c,
                             azf_buf *message, azf_buf *stack);
void azf__worker_caps_clear(azf__caps *c);
/* Answers a WorkerInitRequest (app thread). */
int azf__worker_on_init(struct azf_worker *w, const azf__msg *req);

/* ---- app.c: the application side ---------------------------------------- */
int azf__worker_app_init(struct azf_worker *w);  /* in azf_worker_new */
void azf__worker_app_free(struct azf_worker *w); /* in azf_worker_free */
int azf__worker_app_start(struct azf_worker *w); /* starts the app thread */
/* After the conversation: drains what still runs, stops and joins the app thread. */
void azf__worker_app_finish(struct azf_worker *w);
/* I/O thread handlers. Each answers its request exactly once (maybe later). */
int azf__worker_post(struct azf_worker *w, azf__msg *m); /* metadata, load, env reload */
int azf__worker_post_terminate(struct azf_worker *w, uint32_t grace_ms);
int azf__worker_invoke(struct azf_worker *w, const azf__msg *m);
int azf__worker_cancel(struct azf_worker *w, const azf__msg *m);
int azf__worker_close_shm(struct azf_worker *w, const azf__msg *m);
/* Frees an unpacked message (the worker's protobuf-c allocator). */
void azf__worker_msg_free(azf__msg *m);

#endif
