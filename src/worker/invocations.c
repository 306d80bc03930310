/* Invocations: InvocationRequest to the registry's handlers and back, each answered
 * exactly once; InvocationCancel; the invocations in flight and their drain on
 * terminate and at the end of the stream. */
#include "worker_internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#define TIMEOUT_TEXT "TimeoutError: the invocation did not finish before the worker shut down"
#define SHUTDOWN_TEXT "RuntimeError: the worker is shutting down"

/* ---- FunctionRpc <-> azf_invocation --------------------------------------------------- */

int azf__invocation_from_pb(azf_invocation **out, const azf_function *fn,
                            const AZF__PB(InvocationRequest) * req, int flags, azf__errmsg *err)
{
    if (req->n_input_data > AZF__WORKER_MAX_BINDINGS)
        return azf__err(err, AZF_E_TOOBIG, "%zu input bindings (at most %d are accepted)",
                        req->n_input_data, AZF__WORKER_MAX_BINDINGS);
    if (req->n_trigger_metadata > AZF__WORKER_MAX_TRIGGER_METADATA)
        return azf__err(err, AZF_E_TOOBIG, "%zu trigger metadata entries (at most %d are accepted)",
                        req->n_trigger_metadata, AZF__WORKER_MAX_TRIGGER_METADATA);
    azf_invocation *inv;
    int rc = azf_invocation_new(&inv, fn, req->invocation_id ? req->invocation_id : "");
    if (rc)
        return rc;
    for (size_t i = 0; !rc && i < req->n_input_data; i++) {
        const azf__pb_binding *pb = req->input_data[i];
        azf_value *v;
        if ((rc = azf__value_from_pb_binding(&v, pb, flags, err)))
            break;
        if ((rc = azf__invocation_put_input(inv, pb->name ? pb->name : "", v)))
            azf_value_free(v);
    }
    azf_value_map *meta = NULL;
    if (!rc &&
        !(rc = azf__value_map_from_pb(&meta, req->n_trigger_metadata, req->trigger_metadata, flags,
                                      err)) &&
        (rc = azf_invocation_set_trigger_metadata(inv, meta)))
        azf_value_map_free(meta);
    const AZF__PB(RpcTraceContext) *tc = req->trace_context;
    if (!rc && tc) {
        azf_value_map *attrs = NULL;
        rc = azf_value_map_new(&attrs);
        for (size_t i = 0; !rc && i < tc->n_attributes; i++) {
            azf_value *v;
            const char *key = tc->attributes[i]->key, *val = tc->attributes[i]->value;
            if (!(rc = azf_value_new_string(&v, val ? val : "")) &&
                (rc = azf_value_map_set(attrs, key ? key : "", v)))
                azf_value_free(v);
        }
        if (!rc)
            rc = azf_invocation_set_trace_context(inv, tc->trace_parent, tc->trace_state, attrs);
        if (rc)
            azf_value_map_free(attrs);
    }
    const AZF__PB(RetryContext) *rcx = req->retry_context;
    if (!rc && rcx)
        rc = azf_invocation_set_retry_context(inv, rcx->retry_count, rcx->max_retry_count,
                                              rcx->exception ? rcx->exception->message : "",
                                              rcx->exception ? rcx->exception->stack_trace : "");
    if (rc) {
        azf_invocation_free(inv);
        return rc;
    }
    *out = inv;
    return 0;
}

static void clear_outputs(AZF__PB(InvocationResponse) * resp)
{
    for (size_t i = 0; i < resp->n_output_data; i++) {
        azf__pb_typed_data_free(resp->output_data[i]->data);
        azf__free(resp->output_data[i]);
    }
    azf__free(resp->output_data);
    resp->output_data = NULL;
    resp->n_output_data = 0;
    azf__pb_typed_data_free(resp->return_value);
    resp->return_value = NULL;
}

void azf__invocation_response_clear(AZF__PB(InvocationResponse) * resp)
{
    clear_outputs(resp);
    if (resp->result) {
        if (resp->result->exception)
            azf__codec_clear_strings(&resp->result->exception->base);
        azf__free(resp->result->exception);
        azf__free(resp->result);
        resp->result = NULL;
    }
}

static int encode_outputs(const azf_invocation *inv, AZF__PB(InvocationResponse) * resp,
                          azf__errmsg *err, const char **failed)
{
    const azf_value_map *m = azf_invocation_outputs(inv);
    if (m->n && !(resp->output_data = azf__calloc(m->n, sizeof *resp->output_data)))
        return AZF_E_NOMEM;
    for (size_t i = 0; i < m->n; i++) {
        if (azf_value_kind(m->e[i].value) == AZF_VALUE_NULL)
            continue; /* outputs left at None are not sent */
        azf__pb_binding *pb = AZF__PB_NEW(ParameterBinding, PARAMETER_BINDING);
        if (!pb)
            return AZF_E_NOMEM;
        resp->output_data[resp->n_output_data++] = pb;
        pb->name = m->e[i].key;
        pb->rpc_data_case = AZF__PB_K(PARAMETER_BINDING__RPC_DATA_DATA);
        int rc = azf__value_to_pb_new(m->e[i].value, &pb->data, AZF__MARSHAL_OUTPUT, err);
        if (rc) {
            *failed = m->e[i].key;
            return rc;
        }
    }
    const azf_value *ret = azf_invocation_return_value(inv);
    if (azf_value_kind(ret) != AZF_VALUE_NULL) {
        int rc = azf__value_to_pb_new(ret, &resp->return_value, AZF__MARSHAL_OUTPUT, err);
        if (rc) {
            *failed = "$return";
            return rc;
        }
    }
    return 0;
}

int azf__invocation_to_pb(const azf_invocation *inv, AZF__PB(InvocationResponse) * resp)
{
    int state = azf_invocation_status(inv);
    if (state < AZF_INVOCATION_SUCCEEDED)
        return AZF_E_STATE;
    resp->invocation_id = (char *)azf_invocation_id(inv);
    AZF__PB(StatusResult) *st = AZF__PB_NEW(StatusResult, STATUS_RESULT);
    if (!st)
        return AZF_E_NOMEM;
    resp->result = st;
    size_t mlen, slen;
    const char *stack, *message = azf__invocation_error_text(inv, &mlen, &stack, &slen);
    char text[AZF__ERRMSG_SIZE + 64];
    if (state == AZF_INVOCATION_SUCCEEDED) {
        azf__errmsg err;
        azf__err_clear(&err);
        const char *failed = NULL;
        int rc = encode_outputs(inv, resp, &err, &failed);
        if (rc == AZF_E_NOMEM) {
            azf__invocation_response_clear(resp);
            return rc;
        }
        if (!rc) {
            st->status = AZF__PB_SUCCESS;
            return 0;
        }
        clear_outputs(resp);
        snprintf(text, sizeof text, "TypeError: unable to send the output '%s': %s",
                 failed ? failed : "", err.text);
        message = text;
        mlen = strlen(text);
        stack = "";
        slen = 0;
        state = AZF_INVOCATION_FAILED;
    }
    if (state == AZF_INVOCATION_CANCELLED) {
        st->status = AZF__PB_K(STATUS_RESULT__STATUS__Cancelled);
        return 0;
    }
    st->status = AZF__PB_FAILURE;
    /* The message is copied behind the exception (one allocation), since it may be the
     * local `text`; message and stack may hold NUL (a Python str may) and go out whole. */
    struct exception_block {
        AZF__PB(RpcException) ex; /* first: azf__free(exception) frees the block */
        ProtobufCMessageUnknownField spill[2];
        char message[];
    } *b = azf__malloc(sizeof *b + mlen + 1);
    if (!b) {
        azf__invocation_response_clear(resp);
        return AZF_E_NOMEM;
    }
    b->ex = (AZF__PB(RpcException))AZF__PB_INIT(RPC_EXCEPTION);
    st->exception = &b->ex;
    memcpy(b->message, message, mlen + 1);
    if (azf__codec_set_string(&b->ex.base, b->spill, "message", b->message, mlen) ||
        azf__codec_set_string(&b->ex.base, b->spill, "stack_trace", stack, slen)) {
        azf__invocation_response_clear(resp);
        return AZF_E_NOMEM;
    }
    return 0;
}

/* ---- invocations in flight --------------------------------------------------------
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

int azf__invocations_init(azf_worker *w)
{
    azf__flights *fl = azf__calloc(1, sizeof *fl);
    if (!fl)
        return AZF_E_NOMEM;
    pthread_mutex_init(&fl->lock, NULL);
    pthread_cond_init(&fl->cond, NULL);
    fl->refs = 1;
    fl->w = w;
    w->flights = fl;
    return 0;
}

int azf__invocations_free(azf_worker *w)
{
    azf__flights *fl = w->flights;
    pthread_mutex_lock(&fl->lock);
    fl->w = NULL;
    while (fl->senders)
        pthread_cond_wait(&fl->cond, &fl->lock);
    int running = fl->head != NULL;
    pthread_mutex_unlock(&fl->lock);
    flights_unref(fl);
    return running;
}

static void on_invocation_log(azf_invocation *inv, int level, const char *category,
                              const char *message, size_t len, void *ud)
{
    flight *f = ud;
    azf_worker *w = enter(f->fl);
    if (!w)
        return;
    azf__worker_send_log(w, azf_invocation_id(inv), level, category, message, len);
    leave(f->fl);
}

/* Builds, sends and clears the response of a completed invocation. */
static int send_invocation_response(azf_worker *w, azf_invocation *inv)
{
    if (azf__worker_congested(w)) {
        char text[200];
        snprintf(text, sizeof text,
                 "ResourceExhausted: the host is not reading the worker's messages (%zu MiB "
                 "waiting to be sent); the response of this invocation was dropped",
                 azf__driver_queued(w->driver) >> 20);
        return azf__worker_send_invocation_failure(w, azf_invocation_id(inv), text, "");
    }
    AZF__PB(InvocationResponse) resp = AZF__PB_INIT(INVOCATION_RESPONSE);
    int rc = azf__invocation_to_pb(inv, &resp);
    if (rc)
        return rc;
    rc = azf__shared_memory_send_response(w, &resp);
    azf__invocation_response_clear(&resp);
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
            azf__worker_send_invocation_failure(
                w, azf_invocation_id(inv), "MemoryError: cannot build the invocation response", "");
        leave(fl);
    }
    flight_unref(f);
}

static int fail_invocation(azf_worker *w, const char *id, const char *prefix, const char *text)
{
    char *message = azf__asprintf("%s%s", prefix, text);
    int rc = azf__worker_send_invocation_failure(w, id, message ? message : prefix, "");
    azf__free(message);
    return rc;
}

int azf__invocations_invoke(azf_worker *w, const azf__msg *msg)
{
    const AZF__PB(InvocationRequest) *r = msg->invocation_request;
    const char *id = r->invocation_id ? r->invocation_id : "";
    if (atomic_load(&w->terminating))
        return azf__worker_send_invocation_failure(w, id, SHUTDOWN_TEXT, "");
    const char *fid = r->function_id ? r->function_id : "";
    /* A load that failed: its error, as the host would replay it. */
    char *message = NULL, *stack = NULL;
    if (azf__functions_failed(w, fid, &message, &stack)) {
        int rc = azf__worker_send_invocation_failure(w, id, message ? message : "FunctionLoadError",
                                                     stack ? stack : "");
        azf__free(message);
        azf__free(stack);
        return rc;
    }
    const azf_function *fn = azf_registry_find_id(w->reg, fid);
    if (!fn) {
        char *text = azf__asprintf("FunctionNotFoundError: no function with id '%s' is loaded "
                                   "in this worker",
                                   fid);
        int rc =
            azf__worker_send_invocation_failure(w, id, text ? text : "FunctionNotFoundError", "");
        azf__free(text);
        return rc;
    }
    azf_invocation *inv;
    azf__errmsg err;
    azf__err_clear(&err);
    AZF__PB(InvocationRequest) req;
    char *shm_text = NULL;
    int rc = azf__shared_memory_inputs(r, &req, &shm_text);
    if (!rc)
        rc = azf__invocation_from_pb(&inv, fn, &req, 0, &err);
    azf__shared_memory_free_inputs(&req, r);
    if (rc && shm_text) {
        rc = azf__worker_send_invocation_failure(w, id, shm_text, "");
        azf__free(shm_text);
        return rc;
    }
    if (rc)
        return fail_invocation(w, id, "ValueError: cannot read the invocation request: ",
                               err.text[0] ? err.text : azf_strerror(rc));
    flight *f = azf__calloc(1, sizeof *f);
    if (!f) {
        azf_invocation_free(inv);
        return azf__worker_send_invocation_failure(w, id,
                                                   "MemoryError: cannot start the invocation", "");
    }
    azf__flights *fl = w->flights;
    f->fl = fl;
    f->inv = inv;
    f->refs = 1;
    azf_invocation_set_on_complete(inv, on_invocation_complete, f);
    azf__invocation_set_on_log_len(inv, on_invocation_log, f);
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

int azf__invocations_cancel(azf_worker *w, const azf__msg *msg)
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
            azf__worker_send_invocation_failure(w, ids[i], TIMEOUT_TEXT, "");
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

void azf__invocations_drain(azf_worker *w, uint32_t budget_ms)
{
    if (w->drained)
        return;
    w->drained = 1;
    int64_t deadline = now_ms() + budget_ms;
    if (w->opts.provider.drain)
        w->opts.provider.drain((int)budget_ms, w->opts.provider_user_data);
    settle_flights(w, deadline);
}
