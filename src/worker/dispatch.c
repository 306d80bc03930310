/* The dispatch point: every message from the host goes through one table. */
#include "worker_internal.h"

#include <stdio.h>

/* ---- lifecycle handlers (owned by the worker layer) ---------------------- */

static int on_init(azf_worker *w, const azf__msg *req)
{
    const PB(WorkerInitRequest) *r = req->worker_init_request;
    azf__worker_log(w, AZF_LOG_INFO,
                    "azfunc-worker %s received WorkerInitRequest (host version %s, app %s)",
                    AZF_VERSION_STRING, r->host_version, r->function_app_directory);
    /* Only what this worker really implements (host-protocol §3.3). */
    static const char *caps[][2] = {
        {"RawHttpBodyBytes", "true"},
        {"TypedDataCollection", "true"},
        {"RpcHttpBodyOnly", "true"},
        {"WorkerStatus", "true"},
        {"RpcHttpTriggerMetadataRemoved", "true"},
        {"HandlesWorkerTerminateMessage", "true"},
    };
    enum { NCAPS = sizeof caps / sizeof caps[0] };
    PB(WorkerInitResponse__CapabilitiesEntry) entries[NCAPS], *ptrs[NCAPS];
    for (size_t i = 0; i < NCAPS; i++) {
        PB(WorkerInitResponse__CapabilitiesEntry)
        e = PB_INIT(WORKER_INIT_RESPONSE__CAPABILITIES_ENTRY);
        e.key = (char *)caps[i][0];
        e.value = (char *)caps[i][1];
        entries[i] = e;
        ptrs[i] = &entries[i];
    }
    PB(WorkerMetadata) md;
    azf__worker_metadata(&md);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    PB(WorkerInitResponse) resp = PB_INIT(WORKER_INIT_RESPONSE);
    resp.n_capabilities = NCAPS;
    resp.capabilities = ptrs;
    resp.result = &result;
    resp.worker_metadata = &md;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(WORKER_INIT_RESPONSE);
    m.worker_init_response = &resp;
    return azf__worker_send(w, &m);
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
    /* Keep a margin so the process is gone before the host's grace period ends. */
    uint32_t drain = ms > 1000 ? (uint32_t)(ms - 500) : (uint32_t)(ms / 2);
    azf__worker_log(w, AZF_LOG_INFO,
                    "received WorkerTerminate (grace period %llu ms): draining and exiting",
                    (unsigned long long)ms);
    azf__worker_begin_shutdown(w, 1, drain);
    return 0;
}

static int on_env_reload(azf_worker *w, const azf__msg *req)
{
    (void)req;
    PB(WorkerMetadata) md;
    azf__worker_metadata(&md);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    PB(FunctionEnvironmentReloadResponse) resp = PB_INIT(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE);
    resp.worker_metadata = &md;
    resp.result = &result;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE);
    m.function_environment_reload_response = &resp;
    return azf__worker_send(w, &m);
}

/* ---- the built-in application: no function handlers yet ----------------- */

static int no_app_metadata(azf_worker *w, const azf__msg *req, void *ud)
{
    (void)ud;
    /* What the official worker answers for an app without function_app.py. */
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    PB(FunctionMetadataResponse) resp = PB_INIT(FUNCTION_METADATA_RESPONSE);
    resp.use_default_metadata_indexing = 1;
    resp.result = &result;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = req->request_id; /* echoed, as the official worker does */
    m.content_case = PB_CASE(FUNCTION_METADATA_RESPONSE);
    m.function_metadata_response = &resp;
    return azf__worker_send(w, &m);
}

static int send_failure(azf_worker *w, int is_load, char *id, const char *text)
{
    PB(RpcException) ex = PB_INIT(RPC_EXCEPTION);
    ex.message = (char *)text;
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_FAILURE;
    result.exception = &ex;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    PB(FunctionLoadResponse) load = PB_INIT(FUNCTION_LOAD_RESPONSE);
    PB(InvocationResponse) inv = PB_INIT(INVOCATION_RESPONSE);
    if (is_load) {
        load.function_id = id;
        load.result = &result;
        m.content_case = PB_CASE(FUNCTION_LOAD_RESPONSE);
        m.function_load_response = &load;
    } else {
        inv.invocation_id = id;
        inv.result = &result;
        m.content_case = PB_CASE(INVOCATION_RESPONSE);
        m.invocation_response = &inv;
    }
    return azf__worker_send(w, &m);
}

static int no_app_load(azf_worker *w, const azf__msg *req, void *ud)
{
    (void)ud;
    const PB(FunctionLoadRequest) *r = req->function_load_request;
    const char *name = r->metadata && r->metadata->name[0] ? r->metadata->name : r->function_id;
    char text[512];
    snprintf(text, sizeof text, "FunctionLoadError: no function handler is registered for %s",
             name);
    return send_failure(w, 1, r->function_id, text);
}

static int no_app_invoke(azf_worker *w, const azf__msg *req, void *ud)
{
    (void)ud;
    const PB(InvocationRequest) *r = req->invocation_request;
    char text[512];
    snprintf(text, sizeof text,
             "FunctionNotFound: no function handler is registered for function id %s",
             r->function_id);
    return send_failure(w, 0, r->invocation_id, text);
}

const azf__worker_app azf__worker_no_app = {no_app_metadata, no_app_load, no_app_invoke, NULL};

/* ---- the table ----------------------------------------------------------- */

static int app_metadata(azf_worker *w, const azf__msg *m)
{
    return w->app.metadata(w, m, w->app.user_data);
}
static int app_load(azf_worker *w, const azf__msg *m)
{
    return w->app.load(w, m, w->app.user_data);
}
static int app_invoke(azf_worker *w, const azf__msg *m)
{
    return w->app.invoke(w, m, w->app.user_data);
}

static const struct route {
    int content_case;
    int (*fn)(azf_worker *w, const azf__msg *m);
    int is_work; /* refused once WorkerTerminate arrived */
} routes[] = {
    {PB_CASE(WORKER_INIT_REQUEST), on_init, 0},
    {PB_CASE(WORKER_STATUS_REQUEST), on_status, 0},
    {PB_CASE(WORKER_TERMINATE), on_terminate, 0},
    {PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_REQUEST), on_env_reload, 0},
    /* The application layer's three entry points (see azf__worker_app). */
    {PB_CASE(FUNCTIONS_METADATA_REQUEST), app_metadata, 1},
    {PB_CASE(FUNCTION_LOAD_REQUEST), app_load, 1},
    {PB_CASE(INVOCATION_REQUEST), app_invoke, 1},
};

void azf__worker_dispatch(azf_worker *w, const azf__msg *m)
{
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++) {
        if (routes[i].content_case != (int)m->content_case)
            continue;
        if (routes[i].is_work && atomic_load(&w->terminating)) {
            azf__worker_log(w, AZF_LOG_WARNING,
                            "the worker is shutting down: a request (field %d) was not handled",
                            routes[i].content_case);
            return;
        }
        int rc = routes[i].fn(w, m);
        if (rc)
            azf__log(AZF_LOG_ERROR, "cannot answer a host request (field %d): %s",
                     routes[i].content_case, azf_strerror(rc));
        return;
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
}
