/* The application side of the worker: metadata, loads and env reloads on the app
 * thread through the provider; invocations through the registry's handlers, each
 * answered exactly once; cancel; drain on terminate and at the end of the stream. */
#include "shmem.h"
#include "worker_internal.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* The end of the stream leaves running invocations this long to finish. */
#define FINAL_DRAIN_MS 2000
#define TIMEOUT_TEXT "TimeoutError: the invocation did not finish before the worker shut down"
#define SHUTDOWN_TEXT "RuntimeError: the worker is shutting down"

struct azf__job {
    azf__msg *m;       /* a request, or NULL for the terminate drain */
    uint32_t grace_ms; /* terminate drain */
    struct azf__job *next;
};

struct azf__failed {
    char *id, *message, *stack;
    struct azf__failed *next;
};

/* ---- responses ------------------------------------------------------------ */

static void set_failure(PB(StatusResult) * r, PB(RpcException) * ex, const char *message,
                        const char *stack)
{
    ex->message = (char *)(message ? message : "");
    ex->stack_trace = (char *)(stack ? stack : "");
    r->status = PB_FAILURE;
    r->exception = ex;
}

static int send_invocation_failure(azf_worker *w, const char *invocation_id, const char *message,
                                   const char *stack)
{
    PB(RpcException) ex = PB_INIT(RPC_EXCEPTION);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    set_failure(&result, &ex, message, stack);
    PB(InvocationResponse) resp = PB_INIT(INVOCATION_RESPONSE);
    resp.invocation_id = (char *)invocation_id;
    resp.result = &result;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(INVOCATION_RESPONSE);
    m.invocation_response = &resp;
    return azf__worker_send(w, &m);
}

/* The text of a failed provider call: its message, else the code's. */
static const char *error_text(int rc, const azf_buf *message)
{
    return message->ptr && message->size ? message->ptr : azf_strerror(rc);
}

/* ---- invocations in flight --------------------------------------------------
 * A record per started invocation. The flights object outlives the worker while a
 * handler still holds an invocation the worker had to answer itself (drain timeout),
 * so a late completion never touches a freed worker. */

typedef struct flight {
    azf__flights *fl;
    azf_invocation *inv;
    int answered, refs;
    struct flight *prev, *next;
} flight;

struct azf__flights {
    pthread_mutex_t lock;
    pthread_cond_t cond; /* a flight left, or a sender finished */
    int refs;            /* the worker's + one per flight */
    azf_worker *w;       /* NULL once the worker is freed */
    int senders;         /* threads sending through w */
    flight *head;
    size_t unanswered;
};

static void flights_unref(azf__flights *fl)
{
    pthread_mutex_lock(&fl->lock);
    int left = --fl->refs;
    pthread_mutex_unlock(&fl->lock);
    if (left)
        return;
    pthread_mutex_destroy(&fl->lock);
    pthread_cond_destroy(&fl->cond);
    azf__free(fl);
}

static void flight_unref(flight *f)
{
    azf__flights *fl = f->fl;
    pthread_mutex_lock(&fl->lock);
    int left = --f->refs;
    pthread_mutex_unlock(&fl->lock);
    if (left)
        return;
    azf_invocation_free(f->inv);
    azf__free(f);
    flights_unref(fl);
}

/* The worker to send through, or NULL when it is gone; pair with leave(). */
static azf_worker *enter(azf__flights *fl)
{
    pthread_mutex_lock(&fl->lock);
    azf_worker *w = fl->w;
    if (w)
        fl->senders++;
    pthread_mutex_unlock(&fl->lock);
    return w;
}

static void leave(azf__flights *fl)
{
    pthread_mutex_lock(&fl->lock);
    fl->senders--;
    pthread_cond_broadcast(&fl->cond);
    pthread_mutex_unlock(&fl->lock);
}

static void on_invocation_log(azf_invocation *inv, int level, const char *category,
                              const char *message, void *ud)
{
    flight *f = ud;
    azf_worker *w = enter(f->fl);
    if (!w)
        return;
    PB(RpcLog) log = PB_INIT(RPC_LOG);
    log.invocation_id = (char *)azf_invocation_id(inv);
    log.category = (char *)category;
    log.level = (PB(RpcLog__Level))level;
    log.message = (char *)message;
    log.log_category = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_LOG__RPC_LOG_CATEGORY__User;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(RPC_LOG);
    m.rpc_log = &log;
    azf__worker_send(w, &m);
    leave(f->fl);
}

/* ---- shared memory (host-protocol §6.1, §6.3, §10.19) ---------------------- */

struct azf__shm_map {
    char name[37];
    struct azf__shm_map *next;
};

#define TD_CASE(X) AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_##X
#define BINDING_CASE(X) AZURE_FUNCTIONS_RPC_MESSAGES__PARAMETER_BINDING__RPC_DATA_##X
#define RPC_TYPE(X) AZURE_FUNCTIONS_RPC_MESSAGES__RPC_DATA_TYPE__##X

/* An input in shared memory, read into a data binding. */
typedef struct {
    azf__pb_binding b;
    PB(TypedData) td;
} shm_input;

/* Frees what resolve_shm_inputs allocated in copy. */
static void free_shm_inputs(PB(InvocationRequest) * copy, const PB(InvocationRequest) * r)
{
    if (!copy->input_data || copy->input_data == r->input_data)
        return;
    for (size_t i = 0; i < copy->n_input_data; i++)
        if (copy->input_data[i] && copy->input_data[i] != r->input_data[i]) {
            shm_input *in = (shm_input *)copy->input_data[i];
            azf__free(in->td.data_case == TD_CASE(STRING) ? (void *)in->td.string
                                                          : (void *)in->td.bytes.data);
            azf__free(in);
        }
    azf__free(copy->input_data);
}

/* *copy: r with its shared-memory inputs read into data bindings (shallow; free with
 * free_shm_inputs). On failure *text is an allocated "<Type>: <message>". */
static int resolve_shm_inputs(const PB(InvocationRequest) * r, PB(InvocationRequest) * copy,
                              char **text)
{
    *copy = *r;
    size_t n = 0;
    for (size_t i = 0; i < r->n_input_data; i++)
        n += r->input_data[i]->rpc_data_case == BINDING_CASE(RPC_SHARED_MEMORY);
    if (!n)
        return 0;
    copy->input_data = azf__calloc(r->n_input_data, sizeof *copy->input_data);
    if (!copy->input_data)
        return AZF_E_NOMEM;
    for (size_t i = 0; i < r->n_input_data; i++) {
        const azf__pb_binding *pb = r->input_data[i];
        const PB(RpcSharedMemory) *sm = pb->rpc_shared_memory;
        if (pb->rpc_data_case != BINDING_CASE(RPC_SHARED_MEMORY) || !sm) {
            copy->input_data[i] = (azf__pb_binding *)pb;
            continue;
        }
        const char *name = pb->name ? pb->name : "";
        if (sm->type != RPC_TYPE(bytes) && sm->type != RPC_TYPE(string)) {
            const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
                &azure_functions_rpc_messages__rpc_data_type__descriptor, (int)sm->type);
            *text = azf__asprintf("ValueError: input '%s' in shared memory has type %s; only "
                                  "bytes and string are supported",
                                  name, ev ? ev->name : "unknown");
            return AZF_E_UNSUPPORTED;
        }
        azf__errmsg err;
        azf__err_clear(&err);
        char *data;
        size_t len;
        int rc = azf__shmem_read(sm->name, sm->offset, sm->count, &data, &len, &err);
        if (rc) {
            *text = azf__asprintf("ValueError: cannot read input '%s' from shared memory: %s", name,
                                  err.text[0] ? err.text : azf_strerror(rc));
            return rc;
        }
        shm_input *in = azf__malloc(sizeof *in);
        if (!in) {
            azf__free(data);
            return AZF_E_NOMEM;
        }
        in->b = (azf__pb_binding)PB_INIT(PARAMETER_BINDING);
        in->td = (PB(TypedData))PB_INIT(TYPED_DATA);
        in->b.name = pb->name;
        in->b.rpc_data_case = BINDING_CASE(DATA);
        in->b.data = &in->td;
        if (sm->type == RPC_TYPE(string)) {
            in->td.data_case = TD_CASE(STRING);
            in->td.string = data;
        } else {
            in->td.data_case = TD_CASE(BYTES);
            in->td.bytes.data = (uint8_t *)data;
            in->td.bytes.len = len;
        }
        copy->input_data[i] = &in->b;
    }
    return 0;
}

/* UTF-16 code units x 2, as .NET measures a string (§10.19). */
static uint64_t dotnet_size(const char *s)
{
    uint64_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        n += (*p & 0xc0) != 0x80 ? ((*p >= 0xf0) ? 2 : 1) : 0;
    return n * 2;
}

/* Moves large bytes/string outputs of resp into maps (when enabled); *moved receives the
 * TypedData taken out of the bindings, restored by restore_shm_outputs. */
static void shm_outputs(azf_worker *w, PB(InvocationResponse) * resp, PB(RpcSharedMemory) * sms,
                        PB(TypedData) * *moved)
{
    for (size_t i = 0; i < resp->n_output_data; i++) {
        azf__pb_binding *pb = resp->output_data[i];
        PB(TypedData) *td = pb->rpc_data_case == BINDING_CASE(DATA) ? pb->data : NULL;
        moved[i] = NULL;
        if (!td || (td->data_case != TD_CASE(BYTES) && td->data_case != TD_CASE(STRING)))
            continue;
        int is_str = td->data_case == TD_CASE(STRING);
        uint64_t size = is_str ? dotnet_size(td->string) : td->bytes.len;
        if (size < AZF__SHMEM_MIN || size > AZF__SHMEM_MAX)
            continue;
        struct azf__shm_map *map = azf__malloc(sizeof *map);
        if (!map)
            continue;
        const void *data = is_str ? (const void *)td->string : td->bytes.data;
        size_t len = is_str ? strlen(td->string) : td->bytes.len;
        azf__errmsg err;
        azf__err_clear(&err);
        if (azf__shmem_write(data, len, map->name, &err)) {
            /* As the official worker: the value then goes inline. */
            azf__worker_log(w, AZF_LOG_WARNING,
                            "cannot put output '%s' in shared memory (%s); sending it inline",
                            pb->name, err.text);
            azf__free(map);
            continue;
        }
        pthread_mutex_lock(&w->lock);
        map->next = w->shm_maps;
        w->shm_maps = map;
        pthread_mutex_unlock(&w->lock);
        sms[i] = (PB(RpcSharedMemory))PB_INIT(RPC_SHARED_MEMORY);
        sms[i].name = map->name;
        sms[i].offset = 0;
        sms[i].count = (int64_t)len;
        sms[i].type = is_str ? RPC_TYPE(string) : RPC_TYPE(bytes);
        moved[i] = td;
        pb->rpc_data_case = BINDING_CASE(RPC_SHARED_MEMORY);
        pb->rpc_shared_memory = &sms[i];
    }
}

static void restore_shm_outputs(PB(InvocationResponse) * resp, PB(TypedData) * *moved)
{
    for (size_t i = 0; i < resp->n_output_data; i++)
        if (moved[i]) {
            resp->output_data[i]->rpc_data_case = BINDING_CASE(DATA);
            resp->output_data[i]->data = moved[i];
        }
}

/* Builds, sends and clears the response of a completed invocation. */
static int send_invocation_response(azf_worker *w, azf_invocation *inv)
{
    PB(InvocationResponse) resp = PB_INIT(INVOCATION_RESPONSE);
    int rc = azf__invocation_to_pb(inv, &resp);
    if (rc)
        return rc;
    PB(RpcSharedMemory) *sms = NULL;
    PB(TypedData) **moved = NULL;
    if (resp.n_output_data && azf__shmem_enabled()) {
        sms = azf__calloc(resp.n_output_data, sizeof *sms);
        moved = azf__calloc(resp.n_output_data, sizeof *moved);
        if (sms && moved)
            shm_outputs(w, &resp, sms, moved);
    }
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(INVOCATION_RESPONSE);
    m.invocation_response = &resp;
    rc = azf__worker_send(w, &m);
    if (sms && moved)
        restore_shm_outputs(&resp, moved);
    azf__free(sms);
    azf__free(moved);
    azf__invocation_response_clear(&resp);
    return rc;
}

int azf__worker_close_shm(azf_worker *w, const azf__msg *msg)
{
    const PB(CloseSharedMemoryResourcesRequest) *r = msg->close_shared_memory_resources_request;
    size_t n = r->n_map_names;
    PB(CloseSharedMemoryResourcesResponse__CloseMapResultsEntry) *e =
        n ? azf__calloc(n, sizeof *e) : NULL;
    PB(CloseSharedMemoryResourcesResponse__CloseMapResultsEntry) **ptrs =
        n ? azf__calloc(n, sizeof *ptrs) : NULL;
    if (n && (!e || !ptrs)) {
        azf__free(e);
        azf__free(ptrs);
        return AZF_E_NOMEM;
    }
    int keep = atomic_load(&w->shm_data_cache);
    for (size_t i = 0; i < n; i++) {
        const char *name = r->map_names[i] ? r->map_names[i] : "";
        struct azf__shm_map *found = NULL;
        pthread_mutex_lock(&w->lock);
        for (struct azf__shm_map **pp = &w->shm_maps; *pp; pp = &(*pp)->next)
            if (strcmp((*pp)->name, name) == 0) {
                found = *pp;
                *pp = found->next;
                break;
            }
        pthread_mutex_unlock(&w->lock);
        e[i] = (PB(CloseSharedMemoryResourcesResponse__CloseMapResultsEntry))PB_INIT(
            CLOSE_SHARED_MEMORY_RESOURCES_RESPONSE__CLOSE_MAP_RESULTS_ENTRY);
        e[i].key = (char *)name;
        /* Not ours: false, as the official worker answers for maps it did not allocate. */
        e[i].value = found && (keep || azf__shmem_delete(name) == 0);
        if (!found)
            azf__worker_log(w, AZF_LOG_ERROR,
                            "cannot close shared memory map '%s': not "
                            "allocated by this worker",
                            name);
        azf__free(found);
        ptrs[i] = &e[i];
    }
    PB(CloseSharedMemoryResourcesResponse) resp = PB_INIT(CLOSE_SHARED_MEMORY_RESOURCES_RESPONSE);
    resp.n_close_map_results = n;
    resp.close_map_results = ptrs;
    azf__msg m = PB_INIT(STREAMING_MESSAGE); /* request_id: the worker's, as the official one */
    m.content_case = PB_CASE(CLOSE_SHARED_MEMORY_RESOURCES_RESPONSE);
    m.close_shared_memory_resources_response = &resp;
    int rc = azf__worker_send(w, &m);
    azf__free(e);
    azf__free(ptrs);
    return rc;
}

static void on_invocation_complete(azf_invocation *inv, void *ud)
{
    flight *f = ud;
    azf__flights *fl = f->fl;
    pthread_mutex_lock(&fl->lock);
    int answered = f->answered;
    if (!answered)
        fl->unanswered--;
    f->answered = 1;
    if (f->prev)
        f->prev->next = f->next;
    else
        fl->head = f->next;
    if (f->next)
        f->next->prev = f->prev;
    azf_worker *w = answered ? NULL : fl->w;
    if (w)
        fl->senders++;
    pthread_cond_broadcast(&fl->cond);
    pthread_mutex_unlock(&fl->lock);
    if (w) {
        int rc = send_invocation_response(w, inv);
        if (rc) /* still one response: a failure that needs no memory to build */
            send_invocation_failure(w, azf_invocation_id(inv),
                                    "MemoryError: cannot build the invocation response", "");
        leave(fl);
    }
    flight_unref(f);
}

int azf__worker_invoke(azf_worker *w, const azf__msg *msg)
{
    const PB(InvocationRequest) *r = msg->invocation_request;
    const char *id = r->invocation_id ? r->invocation_id : "";
    if (atomic_load(&w->terminating))
        return send_invocation_failure(w, id, SHUTDOWN_TEXT, "");
    const char *fid = r->function_id ? r->function_id : "";
    /* A load that failed: its error, as the host would replay it. */
    pthread_mutex_lock(&w->lock);
    for (struct azf__failed *f = w->failed; f; f = f->next)
        if (strcmp(f->id, fid) == 0) {
            char *message = azf__strdup(f->message), *stack = azf__strdup(f->stack);
            pthread_mutex_unlock(&w->lock);
            int rc = send_invocation_failure(w, id, message ? message : "FunctionLoadError",
                                             stack ? stack : "");
            azf__free(message);
            azf__free(stack);
            return rc;
        }
    pthread_mutex_unlock(&w->lock);
    const azf_function *fn = azf_registry_find_id(w->reg, fid);
    if (!fn) {
        char *text = azf__asprintf("FunctionNotFoundError: no function with id '%s' is loaded "
                                   "in this worker",
                                   fid);
        int rc = send_invocation_failure(w, id, text ? text : "FunctionNotFoundError", "");
        azf__free(text);
        return rc;
    }
    azf_invocation *inv;
    azf__errmsg err;
    azf__err_clear(&err);
    PB(InvocationRequest) req;
    char *shm_text = NULL;
    int rc = resolve_shm_inputs(r, &req, &shm_text);
    if (!rc)
        rc = azf__invocation_from_pb(&inv, fn, &req, 0, &err);
    free_shm_inputs(&req, r);
    if (rc && shm_text) {
        rc = send_invocation_failure(w, id, shm_text, "");
        azf__free(shm_text);
        return rc;
    }
    if (rc) {
        char *text = azf__asprintf("ValueError: cannot read the invocation request: %s",
                                   err.text[0] ? err.text : azf_strerror(rc));
        rc = send_invocation_failure(w, id, text ? text : "ValueError", "");
        azf__free(text);
        return rc;
    }
    flight *f = azf__calloc(1, sizeof *f);
    if (!f) {
        azf_invocation_free(inv);
        return send_invocation_failure(w, id, "MemoryError: cannot start the invocation", "");
    }
    azf__flights *fl = w->flights;
    f->fl = fl;
    f->inv = inv;
    f->refs = 1;
    azf_invocation_set_on_complete(inv, on_invocation_complete, f);
    azf_invocation_set_on_log(inv, on_invocation_log, f);
    pthread_mutex_lock(&fl->lock);
    fl->refs++;
    f->next = fl->head;
    if (fl->head)
        fl->head->prev = f;
    fl->head = f;
    fl->unanswered++;
    pthread_mutex_unlock(&fl->lock);
    /* The handler only queues the invocation: the I/O thread never waits on a function. */
    return azf_invocation_start(inv);
}

int azf__worker_cancel(azf_worker *w, const azf__msg *msg)
{
    const char *id = msg->invocation_cancel->invocation_id;
    azf__flights *fl = w->flights;
    flight *found = NULL;
    pthread_mutex_lock(&fl->lock);
    for (flight *f = fl->head; f && id; f = f->next)
        if (strcmp(azf_invocation_id(f->inv), id) == 0) {
            found = f;
            f->refs++;
            break;
        }
    pthread_mutex_unlock(&fl->lock);
    if (!found) /* already answered, or never seen: nothing to do */
        return 0;
    azf_invocation_cancel(found->inv);
    flight_unref(found);
    return 0;
}

/* Waits until every invocation is answered or deadline_ms (CLOCK_REALTIME ms)
 * passes, then answers the rest with a Failure. */
static void settle_flights(azf_worker *w, int64_t deadline_ms)
{
    azf__flights *fl = w->flights;
    struct timespec ts = {deadline_ms / 1000, (long)(deadline_ms % 1000) * 1000000L};
    pthread_mutex_lock(&fl->lock);
    while (fl->unanswered && pthread_cond_timedwait(&fl->cond, &fl->lock, &ts) == 0)
        ;
    size_t n = 0;
    for (flight *f = fl->head; f; f = f->next)
        n += !f->answered;
    char **ids = n ? azf__calloc(n, sizeof *ids) : NULL;
    size_t k = 0;
    for (flight *f = fl->head; f && ids; f = f->next)
        if (!f->answered) {
            /* A handler that ignores drain still completes later: the worker
             * answers now and the late completion sends nothing. */
            f->answered = 1;
            fl->unanswered--;
            ids[k++] = azf__strdup(azf_invocation_id(f->inv));
        }
    pthread_mutex_unlock(&fl->lock);
    for (size_t i = 0; i < k; i++) {
        if (ids[i])
            send_invocation_failure(w, ids[i], TIMEOUT_TEXT, "");
        azf__free(ids[i]);
    }
    azf__free(ids);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Provider drain, then the worker's own guarantee (app thread). */
static void drain(azf_worker *w, uint32_t budget_ms)
{
    if (w->drained)
        return;
    w->drained = 1;
    int64_t deadline = now_ms() + budget_ms;
    if (w->opts.provider.drain)
        w->opts.provider.drain((int)budget_ms, w->opts.provider_user_data);
    settle_flights(w, deadline);
}

/* ---- the app thread's requests ------------------------------------------------ */

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

static int on_metadata(azf_worker *w, const azf__msg *req)
{
    char *dir_copy = NULL;
    const char *dir =
        app_dir_of(w, req->functions_metadata_request->function_app_directory, &dir_copy);
    ensure_indexed(w, dir);
    azf__free(dir_copy);
    PB(RpcException) ex = PB_INIT(RPC_EXCEPTION);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    PB(FunctionMetadataResponse) resp = PB_INIT(FUNCTION_METADATA_RESPONSE);
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
        static const azf__pb_function_metadata init = PB_INIT(RPC_FUNCTION_METADATA);
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
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = req->request_id; /* echoed, as the official worker does */
    m.content_case = PB_CASE(FUNCTION_METADATA_RESPONSE);
    m.function_metadata_response = &resp;
    rc = azf__worker_send(w, &m);
    for (size_t i = 0; mds && ptrs && i < n; i++)
        if (ptrs[i])
            azf__function_metadata_clear(&mds[i]);
    azf__free(mds);
    azf__free(ptrs);
    return rc;
}

static const char *const direction_names[] = {"in", "out", "inout"};
static const char *const data_type_names[] = {"undefined", "string", "binary", "stream"};

/* The host's RpcFunctionMetadata as the JSON of azf_worker_load_fn. */
static char *load_metadata_json(const PB(RpcFunctionMetadata) * md)
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
        const PB(BindingInfo) *bi = md->bindings[i]->value;
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

static void remember_failure(azf_worker *w, const char *id, const char *message, const char *stack)
{
    struct azf__failed *f = azf__calloc(1, sizeof *f);
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

static int send_load_response(azf_worker *w, const char *id, const char *message, const char *stack)
{
    PB(RpcException) ex = PB_INIT(RPC_EXCEPTION);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    if (message)
        set_failure(&result, &ex, message, stack);
    PB(FunctionLoadResponse) resp = PB_INIT(FUNCTION_LOAD_RESPONSE);
    resp.function_id = (char *)id;
    resp.result = &result;
    azf__msg m = PB_INIT(STREAMING_MESSAGE); /* request_id: the worker's own */
    m.content_case = PB_CASE(FUNCTION_LOAD_RESPONSE);
    m.function_load_response = &resp;
    return azf__worker_send(w, &m);
}

/* A failed load: remembered (invocations replay it) and answered. */
static int load_failed(azf_worker *w, const char *id, const char *message, const char *stack)
{
    remember_failure(w, id, message, stack);
    return send_load_response(w, id, message, stack);
}

static int on_load(azf_worker *w, const azf__msg *req)
{
    const PB(FunctionLoadRequest) *r = req->function_load_request;
    const char *id = r->function_id ? r->function_id : "";
    const PB(RpcFunctionMetadata) *md = r->metadata;
    pthread_mutex_lock(&w->lock);
    for (struct azf__failed *f = w->failed; f; f = f->next)
        if (strcmp(f->id, id) == 0) {
            char *message = azf__strdup(f->message), *stack = azf__strdup(f->stack);
            pthread_mutex_unlock(&w->lock);
            int rc = send_load_response(w, id, message ? message : "FunctionLoadError",
                                        stack ? stack : "");
            azf__free(message);
            azf__free(stack);
            return rc;
        }
    pthread_mutex_unlock(&w->lock);
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
        azf_buf message = AZF_BUF_INIT, stack = AZF_BUF_INIT;
        int prc = w->opts.provider.load(id, json, fn, &message, &stack, w->opts.provider_user_data);
        cJSON_free(json);
        rc =
            prc < 0 ? load_failed(w, id, error_text(prc, &message), stack.ptr ? stack.ptr : "") : 0;
        azf_buf_dispose(&message);
        azf_buf_dispose(&stack);
        if (prc < 0)
            return rc;
    }
    if (worker_indexed && *worker_indexed)
        return send_load_response(w, id, NULL, NULL);
    /* v1: the function joins the registry once the code loaded (the official checks and
     * texts come first), from its function.json with the host's id. */
    const azf_worker_provider *p = &w->opts.provider;
    rc = azf__registry_add_load_request(w->reg, r, p->has_v1_handler ? &p->v1_handler : NULL,
                                        p->v1_user_data, &fn);
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

static int on_env_reload(azf_worker *w, const azf__msg *req)
{
    const PB(FunctionEnvironmentReloadRequest) *r = req->function_environment_reload_request;
    const char *dir = r->function_app_directory ? r->function_app_directory : "";
    PB(RpcException) ex = PB_INIT(RPC_EXCEPTION);
    PB(StatusResult) result = PB_INIT(STATUS_RESULT);
    result.status = PB_SUCCESS;
    azf_buf message = AZF_BUF_INIT, stack = AZF_BUF_INIT;
    if (*dir) {
        char *copy = azf__strdup(dir);
        pthread_mutex_lock(&w->lock);
        if (copy) {
            azf__free(w->app_dir);
            w->app_dir = copy;
        }
        pthread_mutex_unlock(&w->lock);
    }
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
        if (rc < 0)
            set_failure(&result, &ex, error_text(rc, &message), stack.ptr ? stack.ptr : "");
    }
    /* The provider's init runs again on the new environment (startup.c). */
    azf__caps caps;
    int init_rc = azf__worker_caps_collect(w, dir, &caps, &message, &stack);
    if (init_rc < 0 && result.status == PB_SUCCESS)
        set_failure(&result, &ex, error_text(init_rc, &message), stack.ptr ? stack.ptr : "");
    PB(FunctionEnvironmentReloadResponse__CapabilitiesEntry)
    entries[AZF__CAPS_MAX], *ptrs[AZF__CAPS_MAX];
    for (size_t i = 0; i < caps.n; i++) {
        PB(FunctionEnvironmentReloadResponse__CapabilitiesEntry)
        e = PB_INIT(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE__CAPABILITIES_ENTRY);
        e.key = (char *)caps.kv[i][0];
        e.value = (char *)caps.kv[i][1];
        entries[i] = e;
        ptrs[i] = &entries[i];
    }
    PB(WorkerMetadata) md;
    azf__worker_metadata(w, &md);
    PB(FunctionEnvironmentReloadResponse) resp = PB_INIT(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE);
    resp.worker_metadata = &md;
    resp.n_capabilities = caps.n;
    resp.capabilities = ptrs;
    resp.result = &result;
    azf__msg m = PB_INIT(STREAMING_MESSAGE);
    m.content_case = PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE);
    m.function_environment_reload_response = &resp;
    int rc = azf__worker_send(w, &m);
    azf__worker_caps_clear(&caps);
    azf_buf_dispose(&message);
    azf_buf_dispose(&stack);
    return rc;
}

static void run_job(azf_worker *w, azf__job *job)
{
    if (!job->m) {
        /* WorkerTerminate: drain within the grace period, keeping a margin so the
         * process is gone before the host kills it, then close the stream. */
        uint32_t ms = job->grace_ms;
        uint32_t budget = ms > 1000 ? ms - 1000 : ms / 2, flush = ms - budget;
        drain(w, budget);
        /* Even a zero grace period gets the answers written. */
        azf__worker_begin_shutdown(w, 1, flush < 100 ? 100 : flush > 500 ? 500 : flush);
        return;
    }
    int rc = 0;
    switch (job->m->content_case) {
    case PB_CASE(WORKER_INIT_REQUEST):
        rc = azf__worker_on_init(w, job->m);
        break;
    case PB_CASE(FUNCTIONS_METADATA_REQUEST):
        rc = on_metadata(w, job->m);
        break;
    case PB_CASE(FUNCTION_LOAD_REQUEST):
        rc = on_load(w, job->m);
        break;
    case PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_REQUEST):
        rc = on_env_reload(w, job->m);
        break;
    default:
        break;
    }
    if (rc)
        azf__log(AZF_LOG_ERROR, "cannot answer a host request (field %d): %s",
                 (int)job->m->content_case, azf_strerror(rc));
}

static void *app_thread(void *arg)
{
    azf_worker *w = arg;
    pthread_mutex_lock(&w->lock);
    for (;;) {
        while (!w->jobs && !w->app_quit)
            pthread_cond_wait(&w->cond, &w->lock);
        azf__job *job = w->jobs;
        if (!job)
            break;
        if (!(w->jobs = job->next))
            w->jobs_tail = &w->jobs;
        pthread_mutex_unlock(&w->lock);
        run_job(w, job);
        if (job->m)
            azf__worker_msg_free(job->m);
        azf__free(job);
        pthread_mutex_lock(&w->lock);
    }
    pthread_mutex_unlock(&w->lock);
    /* The conversation is over: complete what still runs (responses are dropped if
     * the stream is gone). */
    drain(w, FINAL_DRAIN_MS);
    return NULL;
}

static int push(azf_worker *w, azf__msg *m, uint32_t grace_ms)
{
    azf__job *job = azf__calloc(1, sizeof *job);
    if (!job)
        return AZF_E_NOMEM;
    job->m = m;
    job->grace_ms = grace_ms;
    pthread_mutex_lock(&w->lock);
    *w->jobs_tail = job;
    w->jobs_tail = &job->next;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    return 0;
}

int azf__worker_post(azf_worker *w, azf__msg *m)
{
    return push(w, m, 0);
}

int azf__worker_post_terminate(azf_worker *w, uint32_t grace_ms)
{
    int expected = 0;
    if (!atomic_compare_exchange_strong(&w->terminating, &expected, 1))
        return 0; /* a second WorkerTerminate changes nothing */
    int rc = push(w, NULL, grace_ms);
    if (rc) /* cannot drain: at least end the conversation */
        azf__worker_begin_shutdown(w, 1, grace_ms / 2);
    return rc;
}

/* ---- life cycle ------------------------------------------------------------- */

int azf__worker_app_init(azf_worker *w)
{
    w->jobs_tail = &w->jobs;
    azf__flights *fl = azf__calloc(1, sizeof *fl);
    if (!fl)
        return AZF_E_NOMEM;
    pthread_mutex_init(&fl->lock, NULL);
    pthread_cond_init(&fl->cond, NULL);
    fl->refs = 1;
    fl->w = w;
    w->flights = fl;
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    if (w->opts.reg) {
        w->reg = w->opts.reg;
        return 0;
    }
    w->own_reg = 1;
    return azf_registry_new(&w->reg);
}

int azf__worker_app_start(azf_worker *w)
{
    int rc = pthread_create(&w->app_thread, NULL, app_thread, w);
    if (rc)
        return AZF_E_NOMEM;
    w->app_started = 1;
    return 0;
}

void azf__worker_app_finish(azf_worker *w)
{
    if (!w->app_started)
        return;
    pthread_mutex_lock(&w->lock);
    w->app_quit = 1;
    pthread_cond_signal(&w->cond);
    pthread_mutex_unlock(&w->lock);
    pthread_join(w->app_thread, NULL);
    w->app_started = 0;
}

void azf__worker_app_free(azf_worker *w)
{
    if (!w->flights) /* azf_worker_new failed before the app side existed */
        return;
    azf__worker_app_finish(w);
    for (azf__job *j = w->jobs, *next; j; j = next) {
        next = j->next;
        if (j->m)
            azf__worker_msg_free(j->m);
        azf__free(j);
    }
    azf__flights *fl = w->flights;
    pthread_mutex_lock(&fl->lock);
    fl->w = NULL;
    while (fl->senders)
        pthread_cond_wait(&fl->cond, &fl->lock);
    int running = fl->head != NULL;
    pthread_mutex_unlock(&fl->lock);
    flights_unref(fl);
    /* A handler that never completes still holds a function: keep the registry. */
    if (w->own_reg && !running)
        azf_registry_free(w->reg);
    for (struct azf__failed *f = w->failed, *next; f; f = next) {
        next = f->next;
        azf__free(f->id);
        azf__free(f->message);
        azf__free(f->stack);
        azf__free(f);
    }
    for (struct azf__shm_map *m = w->shm_maps, *next; m; m = next) {
        next = m->next;
        azf__free(m);
    }
    azf__free(w->app_dir);
    azf__free(w->index_msg);
    azf__free(w->index_stack);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
}
