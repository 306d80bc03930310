/* The dispatch point: every message from the host goes through one table. */
#include "worker_internal.h"

#include <stdio.h>
#include <string.h>

/* ---- lifecycle handlers (owned by the worker layer) ---------------------- */

static int on_init(azf_worker *w, const azf__msg *req)
{
    const PB(WorkerInitRequest) *r = req->worker_init_request;
    azf__worker_log(w, AZF_LOG_INFO,
                    "azfunc-worker %s received WorkerInitRequest (host version %s, app %s)",
                    AZF_VERSION_STRING, r->host_version, r->function_app_directory);
    pthread_mutex_lock(&w->lock);
    char *dir = azf__strdup(r->function_app_directory ? r->function_app_directory : "");
    if (dir) {
        azf__free(w->app_dir);
        w->app_dir = dir;
    }
    pthread_mutex_unlock(&w->lock);
    int cache = 0;
    for (size_t i = 0; i < r->n_capabilities; i++)
        if (r->capabilities[i]->key && strcmp(r->capabilities[i]->key, "FunctionDataCache") == 0)
            cache = azf__parse_bool(r->capabilities[i]->value) == 1;
    atomic_store(&w->shm_data_cache, cache);
    /* Answered on the app thread, after the provider's init (startup.c). */
    return azf__worker_post(w, (azf__msg *)req);
}

static int on_status(azf_worker *w, const azf__msg *req)
{
    PB(WorkerStatusResponse) resp = PB_INIT(WORKER_STATUS_RESPONSE);
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = req->request_id; /* echoed: the host matches on it */
    m.content_case = PB_CASE(WORKER_STATUS_RESPONSE);
    m.worker_status_response = &resp;
    return azf__worker_send(w, &m);
}

static int on_terminate(azf_worker *w, const azf__msg *req)
{
    const PB(Duration) *g = req->worker_terminate->grace_period;
    uint64_t ms = g ? (uint64_t)(g->seconds > 0 ? g->seconds : 0) * 1000u +
                          (uint64_t)(g->nanos > 0 ? g->nanos : 0) / 1000000u
                    : 5000u;
    if (ms > 60000)
        ms = 60000;
    azf__worker_log(w, AZF_LOG_INFO,
                    "received WorkerTerminate (grace period %llu ms): draining and exiting",
                    (unsigned long long)ms);
    return azf__worker_post_terminate(w, (uint32_t)ms);
}

static int post(azf_worker *w, const azf__msg *m)
{
    return azf__worker_post(w, (azf__msg *)m);
}

const char *const azf__worker_caps[][2] = {
    /* Only what this worker really implements (host-protocol §3.3). */
    {"RawHttpBodyBytes", "true"},
    {"TypedDataCollection", "true"},
    {"RpcHttpBodyOnly", "true"},
    {"WorkerStatus", "true"},
    {"RpcHttpTriggerMetadataRemoved", "true"},
    {"HandlesWorkerTerminateMessage", "true"},
    {"HandlesInvocationCancelMessage", "true"},
    {"SharedMemoryDataTransfer", "true"},
};
const size_t azf__worker_ncaps = sizeof azf__worker_caps / sizeof azf__worker_caps[0];

static const struct route {
    int content_case;
    int (*fn)(azf_worker *w, const azf__msg *m);
    int is_work; /* refused once WorkerTerminate arrived */
    int posts;   /* hands the message to the app thread when it returns 0 */
} routes[] = {
    {PB_CASE(WORKER_INIT_REQUEST), on_init, 0, 1},
    {PB_CASE(WORKER_STATUS_REQUEST), on_status, 0, 0},
    {PB_CASE(WORKER_TERMINATE), on_terminate, 0, 0},
    {PB_CASE(INVOCATION_CANCEL), azf__worker_cancel, 0, 0},
    /* Invocations are answered even during shutdown (a Failure then). */
    {PB_CASE(INVOCATION_REQUEST), azf__worker_invoke, 0, 0},
    {PB_CASE(CLOSE_SHARED_MEMORY_RESOURCES_REQUEST), azf__worker_close_shm, 0, 0},
    /* Handed to the app thread, which owns the message from then on. */
    {PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_REQUEST), post, 1, 1},
    {PB_CASE(FUNCTIONS_METADATA_REQUEST), post, 1, 1},
    {PB_CASE(FUNCTION_LOAD_REQUEST), post, 1, 1},
};

int azf__worker_dispatch(azf_worker *w, azf__msg *m)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].content_case != (int)m->content_case)
            continue;
        if (routes[i].is_work && atomic_load(&w->terminating)) {
            azf__worker_log(w, AZF_LOG_WARNING,
                            "the worker is shutting down: a request (field %d) was not handled",
                            routes[i].content_case);
            return 0;
        }
        int rc = routes[i].fn(w, m);
        if (routes[i].posts && rc == 0)
            return 1;
        if (rc)
            azf__log(AZF_LOG_ERROR, "cannot answer a host request (field %d): %s",
                     routes[i].content_case, azf_strerror(rc));
        return 0;
    }
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &azure_functions_rpc_messages__streaming_message__descriptor, (unsigned)m->content_case);
    if (m->content_case == AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__CONTENT__NOT_SET)
        azf__worker_log(w, AZF_LOG_WARNING,
                        "received a StreamingMessage with no content known to this worker "
                        "(an unknown message type?); ignored");
    else
        azf__worker_log(w, AZF_LOG_WARNING,
                        "received an unknown or unsupported StreamingMessage content type %s "
                        "(field %d); ignored",
                        f ? f->name : "?", (int)m->content_case);
    return 0;
}
