/* The worker's start (host-protocol.md §3.3, §3.8): WorkerInitRequest is answered on
 * the app thread after the provider's init callback, and an environment reload asks the
 * callback again, so capabilities that exist only once something runs (an HTTP server's
 * HttpUri, WorkerOpenTelemetryEnabled) are advertised exactly when they are true. */
#include "worker_internal.h"

#include <string.h>

/* The host part of the worker's URI: "http://127.0.0.1:7071/" -> "127.0.0.1",
 * "https://[::1]:1/" -> "::1". NULL when out of memory. */
static char *uri_host(const char *uri)
{
    const char *p = strstr(uri, "://");
    p = p ? p + 3 : uri;
    size_t n;
    if (*p == '[') {
        p++;
        n = strcspn(p, "]");
    } else {
        n = strcspn(p, ":/");
    }
    char *host = azf__malloc(n + 1);
    if (host) {
        memcpy(host, p, n);
        host[n] = '\0';
    }
    return host;
}

int azf__worker_caps_collect(azf_worker *w, const char *app_dir, azf__caps *c, azf_buf *message,
                             azf_buf *stack)
{
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < azf__worker_ncaps && c->n < AZF__CAPS_MAX; i++, c->n++) {
        c->kv[c->n][0] = azf__worker_caps[i][0];
        c->kv[c->n][1] = azf__worker_caps[i][1];
    }
    if (!w->opts.provider.init)
        return 0;
    char *host = uri_host(w->opts.uri ? w->opts.uri : "");
    int rc = host ? azf_value_map_new(&c->extra) : AZF_E_NOMEM;
    if (rc == 0)
        rc = w->opts.provider.init(app_dir ? app_dir : "", host, c->extra, message, stack,
                                   w->opts.provider_user_data);
    azf__free(host);
    for (size_t i = 0; rc == 0 && i < azf_value_map_count(c->extra) && c->n < AZF__CAPS_MAX; i++) {
        const char *key;
        const char *value = azf_value_data(azf_value_map_at(c->extra, i, &key), NULL);
        if (key && value) {
            c->kv[c->n][0] = key;
            c->kv[c->n++][1] = value;
        }
    }
    return rc;
}

void azf__worker_caps_clear(azf__caps *c)
{
    azf_value_map_free(c->extra);
    memset(c, 0, sizeof *c);
}

int azf__worker_on_init(azf_worker *w, const azf__msg *req)
{
    const char *dir = req->worker_init_request->function_app_directory;
    azf_buf message = AZF_BUF_INIT, stack = AZF_BUF_INIT;
    azf__caps caps;
    int rc = azf__worker_caps_collect(w, dir, &caps, &message, &stack);
    PB(RpcException) ex = PB_INIT(RPC_EXCEPTION);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    if (rc < 0) {
        /* As the newer runtime: the host sees why, instead of an init timeout. */
        ex.message = (char *)(message.ptr && message.size ? message.ptr : azf_strerror(rc));
        ex.stack_trace = (char *)(stack.ptr ? stack.ptr : "");
        result.status = PB_FAILURE;
        result.exception = &ex;
    }
    PB(WorkerInitResponse__CapabilitiesEntry) entries[AZF__CAPS_MAX], *ptrs[AZF__CAPS_MAX];
    for (size_t i = 0; i < caps.n; i++) {
        PB(WorkerInitResponse__CapabilitiesEntry)
        e = PB_INIT(WORKER_INIT_RESPONSE__CAPABILITIES_ENTRY);
        e.key = (char *)caps.kv[i][0];
        e.value = (char *)caps.kv[i][1];
        entries[i] = e;
        ptrs[i] = &entries[i];
    }
    PB(WorkerMetadata) md;
    azf__worker_metadata(w, &md);
    PB(WorkerInitResponse) resp = PB_INIT(WORKER_INIT_RESPONSE);
    resp.n_capabilities = caps.n;
    resp.capabilities = ptrs;
    resp.result = &result;
    resp.worker_metadata = &md;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(WORKER_INIT_RESPONSE);
    m.worker_init_response = &resp;
    rc = azf__worker_send(w, &m);
    azf__worker_caps_clear(&caps);
    azf_buf_dispose(&message);
    azf_buf_dispose(&stack);
    return rc;
}
