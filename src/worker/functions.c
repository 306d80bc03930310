/* Functions: FunctionsMetadataRequest (indexing through the provider), FunctionLoadRequest
 * (v1 folders and worker-indexed functions), the loads that failed (remembered, so that
 * invocations fail with their error), and RpcFunctionMetadata <-> registry functions. */
#include "worker_internal.h"

#include <cjson/cJSON.h>
#include <string.h>

struct azf__failed {
    char *id, *message, *stack;
    struct azf__failed *next;
};

/* ---- RpcFunctionMetadata ----------------------------------------------------------- */

static AZF__PB(Duration) * duration(int64_t ms)
{
    AZF__PB(Duration) *d = AZF__PB_NEW(Duration, DURATION);
    if (d) {
        d->seconds = ms / 1000;
        d->nanos = (int32_t)(ms % 1000) * 1000000;
    }
    return d;
}

int azf__function_to_pb(const azf_function *fn, azf__pb_function_metadata *md)
{
    md->name = fn->name;
    md->directory = fn->directory;
    md->script_file = fn->script_file;
    md->entry_point = fn->entry_point;
    md->function_id = fn->id;
    md->language = fn->language;
    md->is_proxy = 0;
    if (!(md->status = AZF__PB_NEW(StatusResult, STATUS_RESULT)))
        goto nomem;
    md->status->status = fn->load_error ? AZF__PB_FAILURE : AZF__PB_SUCCESS;
    if (fn->load_error) {
        if (!(md->status->exception = AZF__PB_NEW(RpcException, RPC_EXCEPTION)))
            goto nomem;
        md->status->exception->message = fn->load_error;
    }
    size_t n = fn->n_bindings;
    if (n) {
        if (!(md->raw_bindings = azf__calloc(n, sizeof *md->raw_bindings)))
            goto nomem;
        md->n_raw_bindings = n;
        for (size_t i = 0; i < n; i++)
            md->raw_bindings[i] = fn->bindings[i].json;
        /* One block of entries, one of BindingInfos, one pointer array. */
        AZF__PB(RpcFunctionMetadata__BindingsEntry) *es = azf__calloc(n, sizeof *es);
        AZF__PB(BindingInfo) *infos = azf__calloc(n, sizeof *infos);
        md->bindings = azf__calloc(n, sizeof *md->bindings);
        if (!es || !infos || !md->bindings) {
            azf__free(es);
            azf__free(infos);
            goto nomem;
        }
        md->n_bindings = n;
        for (size_t i = 0; i < n; i++) {
            es[i] = (AZF__PB(RpcFunctionMetadata__BindingsEntry))AZF__PB_INIT(
                RPC_FUNCTION_METADATA__BINDINGS_ENTRY);
            infos[i] = (AZF__PB(BindingInfo))AZF__PB_INIT(BINDING_INFO);
            infos[i].type = fn->bindings[i].type;
            infos[i].direction = (AZF__PB(BindingInfo__Direction))fn->bindings[i].direction;
            infos[i].data_type = (AZF__PB(BindingInfo__DataType))fn->bindings[i].data_type;
            es[i].key = fn->bindings[i].name;
            es[i].value = &infos[i];
            md->bindings[i] = &es[i];
        }
    }
    if (fn->retry_strategy != AZF_RETRY_NONE) {
        AZF__PB(RpcRetryOptions) *r = AZF__PB_NEW(RpcRetryOptions, RPC_RETRY_OPTIONS);
        if (!(md->retry_options = r))
            goto nomem;
        r->retry_strategy = (AZF__PB(RpcRetryOptions__RetryStrategy))fn->retry_strategy;
        r->max_retry_count = fn->max_retry_count;
        if (fn->retry_strategy == AZF_RETRY_FIXED_DELAY) {
            if (!(r->delay_interval = duration(fn->delay_ms)))
                goto nomem;
        } else if (!(r->minimum_interval = duration(fn->minimum_ms)) ||
                   !(r->maximum_interval = duration(fn->maximum_ms))) {
            goto nomem;
        }
    }
    if (fn->n_props) {
        AZF__PB(RpcFunctionMetadata__PropertiesEntry) *es = azf__calloc(fn->n_props, sizeof *es);
        if (!es || !(md->properties = azf__calloc(fn->n_props, sizeof *md->properties))) {
            azf__free(es);
            goto nomem;
        }
        md->n_properties = fn->n_props;
        for (size_t i = 0; i < fn->n_props; i++) {
            es[i] = (AZF__PB(RpcFunctionMetadata__PropertiesEntry))AZF__PB_INIT(
                RPC_FUNCTION_METADATA__PROPERTIES_ENTRY);
            es[i].key = fn->props[i].name;
            es[i].value = fn->props[i].value;
            md->properties[i] = &es[i];
        }
    }
    return 0;
nomem:
    azf__function_metadata_clear(md);
    return AZF_E_NOMEM;
}

void azf__function_metadata_clear(azf__pb_function_metadata *md)
{
    if (md->status)
        azf__free(md->status->exception);
    azf__free(md->status);
    md->status = NULL;
    azf__free(md->raw_bindings);
    md->raw_bindings = NULL;
    md->n_raw_bindings = 0;
    if (md->n_bindings) {
        azf__free(md->bindings[0]->value);
        azf__free(md->bindings[0]);
    }
    azf__free(md->bindings);
    md->bindings = NULL;
    md->n_bindings = 0;
    if (md->retry_options) {
        azf__free(md->retry_options->delay_interval);
        azf__free(md->retry_options->minimum_interval);
        azf__free(md->retry_options->maximum_interval);
        azf__free(md->retry_options);
        md->retry_options = NULL;
    }
    if (md->n_properties)
        azf__free(md->properties[0]);
    azf__free(md->properties);
    md->properties = NULL;
    md->n_properties = 0;
}

/* ---- failed loads ------------------------------------------------------------------ */

static void remember_failure(azf_worker *w, const char *id, const char *message, const char *stack)
{
    azf__failed *f = azf__calloc(1, sizeof *f);
    if (!f || !(f->id = azf__strdup(id)) || !(f->message = azf__strdup(message)) ||
        !(f->stack = azf__strdup(stack ? stack : ""))) {
        if (f) {
            azf__free(f->id);
            azf__free(f->message);
        }
        azf__free(f);
        return;
    }
    pthread_mutex_lock(&w->lock);
    f->next = w->failed;
    w->failed = f;
    pthread_mutex_unlock(&w->lock);
}

int azf__functions_failed(azf_worker *w, const char *function_id, char **message, char **stack)
{
    int found = 0;
    pthread_mutex_lock(&w->lock);
    for (azf__failed *f = w->failed; f && !found; f = f->next)
        if (strcmp(f->id, function_id) == 0) {
            *message = azf__strdup(f->message);
            *stack = azf__strdup(f->stack);
            found = 1;
        }
    pthread_mutex_unlock(&w->lock);
    return found;
}

void azf__functions_free(azf_worker *w)
{
    for (azf__failed *f = w->failed, *next; f; f = next) {
        next = f->next;
        azf__free(f->id);
        azf__free(f->message);
        azf__free(f->stack);
        azf__free(f);
    }
    w->failed = NULL;
    azf__free(w->index_msg);
    azf__free(w->index_stack);
    w->index_msg = w->index_stack = NULL;
}

/* ---- metadata ---------------------------------------------------------------------- */

/* The text of a failed provider call: its message, else the code's. */
static const char *error_text(int rc, const azf_buf *message)
{
    return message->ptr && message->size ? message->ptr : azf_strerror(rc);
}

/* Runs the index callback once; its outcome is kept for later requests. */
static void ensure_indexed(azf_worker *w, const char *app_dir)
{
    if (w->indexed)
        return;
    w->indexed = 1;
    if (!w->opts.provider.index)
        return;
    azf_buf message = AZF_BUF_INIT, stack = AZF_BUF_INIT;
    int rc = w->opts.provider.index(app_dir, w->reg, &message, &stack, w->opts.provider_user_data);
    if (rc < 0) {
        w->index_rc = rc;
        w->index_msg = azf__strdup(error_text(rc, &message));
        w->index_stack = azf__strdup(stack.ptr ? stack.ptr : "");
    }
    azf_buf_dispose(&message);
    azf_buf_dispose(&stack);
}

static const char *app_dir_of(azf_worker *w, const char *requested, char **copy)
{
    if (requested && *requested)
        return requested;
    pthread_mutex_lock(&w->lock);
    *copy = azf__strdup(w->app_dir ? w->app_dir : "");
    pthread_mutex_unlock(&w->lock);
    return *copy ? *copy : "";
}

static void set_failure(AZF__PB(StatusResult) * r, AZF__PB(RpcException) * ex, const char *message,
                        const char *stack)
{
    ex->message = (char *)(message ? message : "");
    ex->stack_trace = (char *)(stack ? stack : "");
    r->status = AZF__PB_FAILURE;
    r->exception = ex;
}

int azf__functions_metadata(azf_worker *w, const azf__msg *req)
{
    char *dir_copy = NULL;
    const char *dir =
        app_dir_of(w, req->functions_metadata_request->function_app_directory, &dir_copy);
    ensure_indexed(w, dir);
    azf__free(dir_copy);
    AZF__PB(RpcException) ex = AZF__PB_INIT(RPC_EXCEPTION);
    AZF__PB(StatusResult) result = AZF__PB_INIT(STATUS_RESULT);
    result.status = AZF__PB_SUCCESS;
    AZF__PB(FunctionMetadataResponse) resp = AZF__PB_INIT(FUNCTION_METADATA_RESPONSE);
    resp.result = &result;
    azf__pb_function_metadata *mds = NULL, **ptrs = NULL;
    size_t n = 0;
    int rc = 0;
    if (w->index_rc < 0) {
        /* No fallback to function.json: the host ends up with no functions. */
        set_failure(&result, &ex, w->index_msg ? w->index_msg : azf_strerror(w->index_rc),
                    w->index_stack);
    } else if ((n = azf_registry_count(w->reg)) == 0) {
        resp.use_default_metadata_indexing = 1;
    } else if (!(mds = azf__calloc(n, sizeof *mds)) || !(ptrs = azf__calloc(n, sizeof *ptrs))) {
        rc = AZF_E_NOMEM;
    } else {
        static const azf__pb_function_metadata init = AZF__PB_INIT(RPC_FUNCTION_METADATA);
        for (size_t i = 0; i < n && !rc; i++) {
            mds[i] = init;
            ptrs[i] = &mds[i];
            rc = azf__function_to_pb(azf_registry_at(w->reg, i), &mds[i]);
        }
        resp.n_function_metadata_results = n;
        resp.function_metadata_results = ptrs;
    }
    if (rc) {
        resp.n_function_metadata_results = 0;
        set_failure(&result, &ex, "MemoryError: cannot build the function metadata", "");
    }
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.request_id = req->request_id; /* echoed, as the official worker does */
    m.content_case = AZF__PB_CASE(FUNCTION_METADATA_RESPONSE);
    m.function_metadata_response = &resp;
    rc = azf__worker_send(w, &m);
    for (size_t i = 0; mds && ptrs && i < n; i++)
        if (ptrs[i])
            azf__function_metadata_clear(&mds[i]);
    azf__free(mds);
    azf__free(ptrs);
    return rc;
}

/* ---- load ---------------------------------------------------------------------------- */

static const char *const direction_names[] = {"in", "out", "inout"};
static const char *const data_type_names[] = {"undefined", "string", "binary", "stream"};

/* The host's RpcFunctionMetadata as the JSON of azf_worker_load_fn. */
static char *load_metadata_json(const AZF__PB(RpcFunctionMetadata) * md)
{
    cJSON *o = cJSON_CreateObject(), *b = NULL, *p = NULL;
    int ok = o && cJSON_AddStringToObject(o, "name", md->name ? md->name : "") &&
             cJSON_AddStringToObject(o, "directory", md->directory ? md->directory : "") &&
             cJSON_AddStringToObject(o, "scriptFile", md->script_file ? md->script_file : "") &&
             cJSON_AddStringToObject(o, "entryPoint", md->entry_point ? md->entry_point : "") &&
             cJSON_AddBoolToObject(o, "isProxy", md->is_proxy) &&
             (b = cJSON_AddObjectToObject(o, "bindings")) &&
             (p = cJSON_AddObjectToObject(o, "properties"));
    for (size_t i = 0; ok && i < md->n_bindings; i++) {
        const AZF__PB(BindingInfo) *bi = md->bindings[i]->value;
        cJSON *e = cJSON_CreateObject();
        unsigned d = bi ? (unsigned)bi->direction : 0, t = bi ? (unsigned)bi->data_type : 0;
        if (!e || !cJSON_AddItemToObject(b, md->bindings[i]->key ? md->bindings[i]->key : "", e)) {
            cJSON_Delete(e);
            ok = 0;
            break;
        }
        ok = cJSON_AddStringToObject(e, "type", bi && bi->type ? bi->type : "") &&
             cJSON_AddStringToObject(e, "direction", d < 3 ? direction_names[d] : "in") &&
             cJSON_AddStringToObject(e, "dataType", t < 4 ? data_type_names[t] : "undefined");
    }
    for (size_t i = 0; ok && i < md->n_properties; i++)
        ok = cJSON_AddStringToObject(p, md->properties[i]->key ? md->properties[i]->key : "",
                                     md->properties[i]->value ? md->properties[i]->value : "") !=
             NULL;
    char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
    cJSON_Delete(o);
    return text;
}

static int send_load_response(azf_worker *w, const char *id, const char *message, const char *stack)
{
    AZF__PB(RpcException) ex = AZF__PB_INIT(RPC_EXCEPTION);
    AZF__PB(StatusResult) result = AZF__PB_INIT(STATUS_RESULT);
    result.status = AZF__PB_SUCCESS;
    if (message)
        set_failure(&result, &ex, message, stack);
    AZF__PB(FunctionLoadResponse) resp = AZF__PB_INIT(FUNCTION_LOAD_RESPONSE);
    resp.function_id = (char *)id;
    resp.result = &result;
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE); /* request_id: the worker's own */
    m.content_case = AZF__PB_CASE(FUNCTION_LOAD_RESPONSE);
    m.function_load_response = &resp;
    return azf__worker_send(w, &m);
}

/* A failed load: remembered (invocations replay it) and answered. */
static int load_failed(azf_worker *w, const char *id, const char *message, const char *stack)
{
    remember_failure(w, id, message, stack);
    return send_load_response(w, id, message, stack);
}

/* The v1 path: the function joins the registry from its function.json, with the host's
 * id, name and properties. */
static int add_from_request(azf_worker *w, const AZF__PB(FunctionLoadRequest) * r,
                            const azf_function **fn)
{
    const AZF__PB(RpcFunctionMetadata) *md = r->metadata;
    size_t n = md->n_properties;
    azf__kv *props = n ? azf__calloc(n, sizeof *props) : NULL;
    if (n && !props)
        return AZF_E_NOMEM;
    for (size_t i = 0; i < n; i++) {
        props[i].name = md->properties[i]->key;
        props[i].value = md->properties[i]->value;
    }
    const azf_worker_provider *p = &w->opts.provider;
    int rc =
        azf__registry_add_folder(w->reg, r->function_id, md->name, md->directory, props, n,
                                 p->has_v1_handler ? &p->v1_handler : NULL, p->v1_user_data, fn);
    azf__free(props);
    return rc;
}

int azf__functions_load(azf_worker *w, const azf__msg *req)
{
    const AZF__PB(FunctionLoadRequest) *r = req->function_load_request;
    const char *id = r->function_id ? r->function_id : "";
    const AZF__PB(RpcFunctionMetadata) *md = r->metadata;
    char *message = NULL, *stack = NULL;
    if (azf__functions_failed(w, id, &message, &stack)) {
        int rc =
            send_load_response(w, id, message ? message : "FunctionLoadError", stack ? stack : "");
        azf__free(message);
        azf__free(stack);
        return rc;
    }
    const azf_function *fn = azf_registry_find_id(w->reg, id);
    if (fn) /* worker-indexed, or loaded before */
        return send_load_response(w, id, azf_function_load_error(fn), "");
    const char *worker_indexed = NULL;
    for (size_t i = 0; md && i < md->n_properties; i++)
        if (md->properties[i]->key && strcmp(md->properties[i]->key, "worker_indexed") == 0)
            worker_indexed = md->properties[i]->value;
    int rc = 0;
    if (worker_indexed && *worker_indexed) {
        /* Another worker process was asked for the metadata: index here too. */
        char *dir_copy = NULL;
        const char *dir = app_dir_of(w, md->directory, &dir_copy);
        ensure_indexed(w, dir);
        azf__free(dir_copy);
        fn = azf_registry_find_id(w->reg, id);
        if (!w->opts.provider.load) {
            if (w->index_rc < 0)
                return load_failed(w, id, w->index_msg ? w->index_msg : "Exception",
                                   w->index_stack);
            if (!fn) {
                char *text = azf__asprintf("FunctionLoadError: function %s (%s) is not in the "
                                           "indexed app",
                                           md->name ? md->name : "", id);
                rc = load_failed(w, id, text ? text : "FunctionLoadError", "");
                azf__free(text);
                return rc;
            }
            return send_load_response(w, id, NULL, NULL);
        }
    } else if (!md) {
        return load_failed(w, id, "FunctionLoadError: the load request has no function metadata",
                           "");
    }
    if (w->opts.provider.load) {
        char *json = load_metadata_json(md);
        if (!json)
            return load_failed(w, id, "MemoryError: cannot describe the function", "");
        azf_buf msg = AZF_BUF_INIT, stk = AZF_BUF_INIT;
        int prc = w->opts.provider.load(id, json, fn, &msg, &stk, w->opts.provider_user_data);
        cJSON_free(json);
        rc = prc < 0 ? load_failed(w, id, error_text(prc, &msg), stk.ptr ? stk.ptr : "") : 0;
        azf_buf_dispose(&msg);
        azf_buf_dispose(&stk);
        if (prc < 0)
            return rc;
    }
    if (worker_indexed && *worker_indexed)
        return send_load_response(w, id, NULL, NULL);
    /* v1: the function joins the registry once the code loaded (the official checks and
     * texts come first), from its function.json with the host's id. */
    rc = add_from_request(w, r, &fn);
    if (rc) {
        char *text = azf__asprintf("FunctionLoadError: cannot load the %s function: %s",
                                   md->name ? md->name : id,
                                   rc == AZF_E_INVALID ? "the load request has no directory"
                                                       : azf_registry_errmsg(w->reg));
        rc = load_failed(w, id, text ? text : "FunctionLoadError", "");
        azf__free(text);
        return rc;
    }
    if (azf_function_load_error(fn))
        return load_failed(w, id, azf_function_load_error(fn), "");
    return send_load_response(w, id, NULL, NULL);
}
