/* The worker's life cycle: WorkerInitRequest, WorkerStatusRequest,
 * FunctionEnvironmentReloadRequest and WorkerTerminate, and the one capabilities list
 * both init and reload responses carry. */
#include "worker_internal.h"

#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>

#ifndef AZF_PYTHON_VERSION
#define AZF_PYTHON_VERSION "3.11"
#endif

/* WorkerTerminate without a grace period gets the host's default, 5 s; more than a
 * minute is not waited for. */
#define DEFAULT_GRACE_MS 5000u
#define MAX_GRACE_MS 60000u

#define MAX_CAPS 16

/* The init and reload responses carry the same map<string, string>; their generated
 * entry structs differ only by descriptor. */
typedef AZF__PB(WorkerInitResponse__CapabilitiesEntry) cap_entry;
_Static_assert(sizeof(cap_entry) ==
                   sizeof(AZF__PB(FunctionEnvironmentReloadResponse__CapabilitiesEntry)),
               "capability entries share one layout");

/* The capabilities this worker really implements (host-protocol §3.3), then the
 * conditional ones of the provider's init callback (extra, may be NULL), for the
 * response whose entry descriptor is d. Returns how many entries were filled. */
static size_t capabilities(azf_worker *w, const ProtobufCMessageDescriptor *d,
                           const azf_value_map *extra, cap_entry e[MAX_CAPS],
                           cap_entry *ptrs[MAX_CAPS])
{
    (void)w; /* capabilities that depend on the worker's options are added here */
    static const char *const fixed[] = {
        "RawHttpBodyBytes",
        "TypedDataCollection",
        "RpcHttpBodyOnly",
        "WorkerStatus",
        "RpcHttpTriggerMetadataRemoved",
        "HandlesWorkerTerminateMessage",
        "HandlesInvocationCancelMessage",
        "SharedMemoryDataTransfer",
    };
    size_t n = 0;
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0] && n < MAX_CAPS; i++, n++) {
        e[n] = (cap_entry)AZF__PB_INIT(WORKER_INIT_RESPONSE__CAPABILITIES_ENTRY);
        e[n].base.descriptor = d;
        e[n].key = (char *)fixed[i];
        e[n].value = "true";
        ptrs[n] = &e[n];
    }
    for (size_t i = 0; i < azf_value_map_count(extra) && n < MAX_CAPS; i++) {
        const char *key;
        const char *value = azf_value_data(azf_value_map_at(extra, i, &key), NULL);
        if (!key || !value)
            continue;
        e[n] = (cap_entry)AZF__PB_INIT(WORKER_INIT_RESPONSE__CAPABILITIES_ENTRY);
        e[n].base.descriptor = d;
        e[n].key = (char *)key;
        e[n].value = (char *)value;
        ptrs[n] = &e[n];
        n++;
    }
    return n;
}

/* The host part of the worker's URI: "http://127.0.0.1:7071/" -> "127.0.0.1",
 * "https://[::1]:1/" -> "::1" (allocated; NULL when out of memory). */
static char *uri_host(const char *uri)
{
    const char *p = strstr(uri, "://");
    p = p ? p + 3 : uri;
    size_t n = *p == '[' ? strcspn(++p, "]") : strcspn(p, ":/");
    char *host = azf__malloc(n + 1);
    if (host) {
        memcpy(host, p, n);
        host[n] = '\0';
    }
    return host;
}

/* The provider's init callback (app thread), at WorkerInitRequest and after a reload:
 * what the settings ask for is set up now, and capabilities that exist only once it
 * runs (an HTTP server's HttpUri) come back in *extra. 0 or its error. */
static int provider_init(azf_worker *w, const char *app_dir, azf_value_map **extra,
                         azf_buf *message, azf_buf *stack)
{
    *extra = NULL;
    if (!w->opts.provider.init)
        return 0;
    char *host = uri_host(w->opts.uri ? w->opts.uri : "");
    int rc = host ? azf_value_map_new(extra) : AZF_E_NOMEM;
    if (rc == 0)
        rc = w->opts.provider.init(app_dir, host, *extra, message, stack,
                                   w->opts.provider_user_data);
    azf__free(host);
    return rc;
}

/* WorkerMetadata (strings borrowed from w and static storage; no allocation). */
static void worker_metadata(azf_worker *w, AZF__PB(WorkerMetadata) * md)
{
    static char machine[65];
    if (!machine[0]) {
        struct utsname u;
        snprintf(machine, sizeof machine, "%s", uname(&u) == 0 ? u.machine : "unknown");
    }
    *md = (AZF__PB(WorkerMetadata))AZF__PB_INIT(WORKER_METADATA);
    md->runtime_name = w->opts.runtime_name ? w->opts.runtime_name : "python";
    md->runtime_version = w->opts.runtime_version ? w->opts.runtime_version : AZF_PYTHON_VERSION;
    md->worker_version = AZF_VERSION_STRING;
    md->worker_bitness = machine;
}

/* The text of a failed provider call: its message, else the code's. */
static const char *error_text(int rc, const azf_buf *message)
{
    return message->ptr && message->size ? message->ptr : azf_strerror(rc);
}

static void set_app_dir(azf_worker *w, const char *dir)
{
    char *copy = azf__strdup(dir);
    pthread_mutex_lock(&w->lock);
    if (copy) {
        azf__free(w->app_dir);
        w->app_dir = copy;
    }
    pthread_mutex_unlock(&w->lock);
}

int azf__lifecycle_init(azf_worker *w, const azf__msg *req)
{
    const AZF__PB(WorkerInitRequest) *r = req->worker_init_request;
    azf__worker_log(w, AZF_LOG_INFO,
                    "azfunc-worker %s received WorkerInitRequest (host version %s, app %s)",
                    AZF_VERSION_STRING, r->host_version, r->function_app_directory);
    set_app_dir(w, r->function_app_directory ? r->function_app_directory : "");
    int cache = 0;
    for (size_t i = 0; i < r->n_capabilities; i++)
        if (r->capabilities[i]->key && strcmp(r->capabilities[i]->key, "FunctionDataCache") == 0)
            cache = azf__parse_bool(r->capabilities[i]->value) == 1;
    atomic_store(&w->shm_data_cache, cache);
    azf_buf message = AZF_BUF_INIT, stack = AZF_BUF_INIT;
    azf_value_map *extra = NULL;
    int rc = w->opts.init_error
                 ? 0
                 : provider_init(w, r->function_app_directory ? r->function_app_directory : "",
                                 &extra, &message, &stack);
    cap_entry entries[MAX_CAPS], *ptrs[MAX_CAPS];
    AZF__PB(WorkerMetadata) md;
    worker_metadata(w, &md);
    AZF__PB(StatusResult) result = AZF__PB_INIT(STATUS_RESULT);
    AZF__PB(RpcException) ex = AZF__PB_INIT(RPC_EXCEPTION);
    result.status = AZF__PB_SUCCESS;
    if (w->opts.init_error) { /* the runtime did not start: say why */
        ex.message = w->opts.init_error;
        ex.stack_trace = (char *)"";
        result.status = AZF__PB_FAILURE;
        result.exception = &ex;
    } else if (rc < 0) { /* as the newer runtime: the host sees why, not an init timeout */
        ex.message = (char *)error_text(rc, &message);
        ex.stack_trace = stack.ptr ? stack.ptr : "";
        result.status = AZF__PB_FAILURE;
        result.exception = &ex;
    }
    AZF__PB(WorkerInitResponse) resp = AZF__PB_INIT(WORKER_INIT_RESPONSE);
    resp.n_capabilities = capabilities(
        w, &azure_functions_rpc_messages__worker_init_response__capabilities_entry__descriptor,
        extra, entries, ptrs);
    resp.capabilities = ptrs;
    resp.result = &result;
    resp.worker_metadata = &md;
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.content_case = AZF__PB_CASE(WORKER_INIT_RESPONSE);
    m.worker_init_response = &resp;
    rc = azf__worker_send(w, &m);
    azf_value_map_free(extra);
    azf_buf_dispose(&message);
    azf_buf_dispose(&stack);
    return rc;
}

int azf__lifecycle_status(azf_worker *w, const azf__msg *req)
{
    AZF__PB(WorkerStatusResponse) resp = AZF__PB_INIT(WORKER_STATUS_RESPONSE);
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.request_id = req->request_id; /* echoed: the host matches on it */
    m.content_case = AZF__PB_CASE(WORKER_STATUS_RESPONSE);
    m.worker_status_response = &resp;
    return azf__worker_send(w, &m);
}

int azf__lifecycle_reload(azf_worker *w, const azf__msg *req)
{
    const AZF__PB(FunctionEnvironmentReloadRequest) *r = req->function_environment_reload_request;
    const char *dir = r->function_app_directory ? r->function_app_directory : "";
    AZF__PB(RpcException) ex = AZF__PB_INIT(RPC_EXCEPTION);
    AZF__PB(StatusResult) result = AZF__PB_INIT(STATUS_RESULT);
    result.status = AZF__PB_SUCCESS;
    azf_buf message = AZF_BUF_INIT, stack = AZF_BUF_INIT;
    if (*dir)
        set_app_dir(w, dir);
    if (w->opts.provider.reload) {
        azf_value_map *env = NULL;
        int rc = azf_value_map_new(&env);
        for (size_t i = 0; !rc && i < r->n_environment_variables; i++) {
            azf_value *v;
            const char *key = r->environment_variables[i]->key;
            const char *val = r->environment_variables[i]->value;
            if (!key || !*key)
                continue;
            if (!(rc = azf_value_new_string(&v, val ? val : "")) &&
                (rc = azf_value_map_set(env, key, v)))
                azf_value_free(v);
        }
        if (!rc)
            rc = w->opts.provider.reload(env, dir, &message, &stack, w->opts.provider_user_data);
        azf_value_map_free(env);
        if (rc < 0) {
            ex.message = (char *)error_text(rc, &message);
            ex.stack_trace = stack.ptr ? stack.ptr : "";
            result.status = AZF__PB_FAILURE;
            result.exception = &ex;
        }
    }
    /* The provider's init again, on the new environment (§3.8 steps 6-7). */
    azf_value_map *extra = NULL;
    if (result.status == AZF__PB_SUCCESS) {
        int rc = provider_init(w, dir, &extra, &message, &stack);
        if (rc < 0) {
            ex.message = (char *)error_text(rc, &message);
            ex.stack_trace = stack.ptr ? stack.ptr : "";
            result.status = AZF__PB_FAILURE;
            result.exception = &ex;
        }
    }
    cap_entry entries[MAX_CAPS], *ptrs[MAX_CAPS];
    AZF__PB(WorkerMetadata) md;
    worker_metadata(w, &md);
    AZF__PB(FunctionEnvironmentReloadResponse)
    resp = AZF__PB_INIT(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE);
    resp.worker_metadata = &md;
    resp.n_capabilities = capabilities(
        w,
        &azure_functions_rpc_messages__function_environment_reload_response__capabilities_entry__descriptor,
        extra, entries, ptrs);
    resp.capabilities = (AZF__PB(FunctionEnvironmentReloadResponse__CapabilitiesEntry) **)ptrs;
    resp.result = &result;
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.content_case = AZF__PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE);
    m.function_environment_reload_response = &resp;
    int rc = azf__worker_send(w, &m);
    azf_value_map_free(extra);
    azf_buf_dispose(&message);
    azf_buf_dispose(&stack);
    return rc;
}

int azf__lifecycle_terminate(azf_worker *w, const azf__msg *req)
{
    const AZF__PB(Duration) *g = req->worker_terminate->grace_period;
    uint64_t ms = g ? (uint64_t)(g->seconds > 0 ? g->seconds : 0) * 1000u +
                          (uint64_t)(g->nanos > 0 ? g->nanos : 0) / 1000000u
                    : DEFAULT_GRACE_MS;
    if (g && g->seconds > (int64_t)(MAX_GRACE_MS / 1000))
        ms = MAX_GRACE_MS;
    if (ms > MAX_GRACE_MS)
        ms = MAX_GRACE_MS;
    azf__worker_log(w, AZF_LOG_INFO,
                    "received WorkerTerminate (grace period %llu ms): draining and exiting",
                    (unsigned long long)ms);
    /* Drain within the grace period, keeping a margin so the process is gone before the
     * host kills it, then close the stream; even a zero grace period gets the answers
     * written. */
    uint32_t budget = ms > 1000 ? (uint32_t)ms - 1000 : (uint32_t)ms / 2;
    uint32_t flush = (uint32_t)ms - budget;
    azf__invocations_drain(w, budget);
    azf__worker_begin_shutdown(w, 1, flush < 100 ? 100 : flush > 500 ? 500 : flush);
    return 0;
}
