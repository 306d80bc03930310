/* Internal interface of the worker layer. */
#ifndef AZF_WORKER_INTERNAL_H
#define AZF_WORKER_INTERNAL_H

#include "FunctionRpc.pb-c.h"
#include "azfunc/worker.h"
#include "common/common_internal.h"

#include <stdatomic.h>

/* Short names for the generated protobuf-c types. */
#define PB(name) AzureFunctionsRpcMessages__##name
#define PB_INIT(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__##NAME##__INIT
#define PB_CASE(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__CONTENT_##NAME
#define PB_SUCCESS AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Success
#define PB_FAILURE AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Failure
typedef PB(StreamingMessage) azf__msg;

struct azf_worker_opts {
    char *uri, *worker_id, *request_id;
    size_t max_message_length;
    azf_transport_opts *transport;
    azf__errmsg err;
};

struct azf_worker;

/* ---- The application dispatch point -------------------------------------
 * FunctionsMetadataRequest, FunctionLoadRequest and InvocationRequest go to the
 * application layer (registry + Python adapter, a later issue) through this one
 * table. Each handler owns the reply: it must send exactly one response for its
 * request (for invocations, possibly later and from another thread, with
 * azf__worker_send). The built-in table answers as a worker with no function
 * handlers does. */
typedef struct azf__worker_app {
    int (*metadata)(struct azf_worker *w, const azf__msg *req, void *user_data);
    int (*load)(struct azf_worker *w, const azf__msg *req, void *user_data);
    int (*invoke)(struct azf_worker *w, const azf__msg *req, void *user_data);
    void *user_data;
} azf__worker_app;

extern const azf__worker_app azf__worker_no_app;

struct azf_worker {
    azf_worker_opts opts;
    azf_transport_opts *transport;
    azf__worker_app app;
    azf_driver *driver;
    uint64_t stream;
    atomic_int terminating;
    int ran;
    int stream_closed, close_status;
    char close_msg[256];
    azf__errmsg err;
};

/* Sends a message on the stream (any thread). An empty request_id is stamped
 * with the worker's --requestId. Returns 0 or a negative AZF_E_* code. */
int azf__worker_send(struct azf_worker *w, azf__msg *m);

/* Sends a System RpcLog (any thread). */
void azf__worker_log(struct azf_worker *w, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Starts a graceful end once (why: 1 WorkerTerminate, 2 azf_worker_stop). */
void azf__worker_begin_shutdown(struct azf_worker *w, int why, uint32_t timeout_ms);

/* Routes one decoded message from the host to its handler (I/O thread). */
void azf__worker_dispatch(struct azf_worker *w, const azf__msg *m);

/* Fills a WorkerMetadata (static strings; no allocation). */
void azf__worker_metadata(PB(WorkerMetadata) * md);

#endif
