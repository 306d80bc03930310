/* The worker: connection, StartStream, the receive path (every byte through the codec),
 * send and log. What each message means is the areas' business (see worker_internal.h). */
#include "worker_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* WorkerTerminate without a grace period gets the host's default, 5 s. */
#define DEFAULT_GRACE_MS 5000u

/* The I/O thread polls this long before it sleeps: the host's next request
 * usually comes within it at one in flight (azf__driver_set_poll). */
#define IO_POLL_US 100u

int azf__worker_send(azf_worker *w, azf__msg *m)
{
    if (!m->request_id || !m->request_id[0])
        m->request_id = w->opts.request_id ? w->opts.request_id : "";
    azf_buf b = AZF_BUF_INIT;
    int rc = azf__codec_pack(&b, &m->base);
    if (!rc && w->sink)
        w->sink((const uint8_t *)b.ptr, b.size, w->sink_ud);
    else if (!rc)
        rc = azf_driver_send(w->driver, w->stream, &b);
    azf_buf_dispose(&b);
    return rc;
}

int azf__worker_congested(azf_worker *w)
{
    return azf__driver_queued(w->driver) >= AZF__WORKER_SEND_QUEUE_MAX;
}

int azf__worker_send_invocation_failure(azf_worker *w, const char *invocation_id,
                                        const char *message, const char *stack)
{
    AZF__PB(RpcException) ex = AZF__PB_INIT(RPC_EXCEPTION);
    ex.message = (char *)(message ? message : "");
    ex.stack_trace = (char *)(stack ? stack : "");
    AZF__PB(StatusResult) result = AZF__PB_INIT(STATUS_RESULT);
    result.status = AZF__PB_FAILURE;
    result.exception = &ex;
    AZF__PB(InvocationResponse) resp = AZF__PB_INIT(INVOCATION_RESPONSE);
    resp.invocation_id = (char *)invocation_id;
    resp.result = &result;
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.content_case = AZF__PB_CASE(INVOCATION_RESPONSE);
    m.invocation_response = &resp;
    return azf__worker_send(w, &m);
}

void azf__worker_send_log(azf_worker *w, const char *invocation_id, int level, const char *category,
                          const char *text, size_t len)
{
    /* Logs are best effort; responses are not. */
    if (!atomic_load(&w->live) || azf__worker_congested(w))
        return;
    AZF__PB(RpcLog) log = AZF__PB_INIT(RPC_LOG);
    ProtobufCMessageUnknownField spill[1];
    log.invocation_id = (char *)(invocation_id ? invocation_id : "");
    log.category = (char *)(category ? category : "azfunc.worker");
    log.level = (AZF__PB(RpcLog__Level))level;
    if (azf__codec_set_string(&log.base, spill, "message", text, len)) /* NUL and all */
        return;
    log.log_category = invocation_id ? AZF__PB_K(RPC_LOG__RPC_LOG_CATEGORY__User)
                                     : AZF__PB_K(RPC_LOG__RPC_LOG_CATEGORY__System);
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.content_case = AZF__PB_CASE(RPC_LOG);
    m.rpc_log = &log;
    azf__worker_send(w, &m);
    azf__codec_clear_strings(&log.base);
}

void azf__worker_log(azf_worker *w, int level, const char *fmt, ...)
{
    char text[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    azf__worker_send_log(w, NULL, level, NULL, text, strlen(text));
    azf__log(level, "%s", text);
}

int azf_worker_log(azf_worker *w, int level, const char *category, const char *message)
{
    if (!w || !message || level < AZF_LOG_TRACE || level > AZF_LOG_CRITICAL + 1)
        return AZF_E_INVALID;
    azf__worker_send_log(w, NULL, level, category, message, strlen(message));
    return 0;
}

azf_registry *azf_worker_registry(azf_worker *w)
{
    return w ? w->reg : NULL;
}

/* ---- transport callbacks (I/O thread) ----------------------------------- */

/* A message the codec refused. An InvocationRequest still gets its one response when its
 * id can be read and echoed intact; anything else is reported to the host as a log. */
static void refused(azf_worker *w, const uint8_t *data, size_t len, const char *why)
{
    const char *id;
    size_t n;
    if (azf__codec_peek_invocation_id(data, len, &id, &n) && n && !memchr(id, 0, n)) {
        char *copy = azf__strndup(id, n);
        char *text = azf__asprintf("ValueError: the invocation request was refused: %s", why);
        if (copy)
            azf__worker_send_invocation_failure(w, copy, text ? text : "ValueError", "");
        azf__free(copy);
        azf__free(text);
        return;
    }
    azf__worker_log(w, AZF_LOG_ERROR,
                    "cannot decode a %zu-byte message from the host as a StreamingMessage (%s); "
                    "ignored",
                    len, why);
}

void azf__worker_set_sink(azf_worker *w, void (*sink)(const uint8_t *data, size_t len, void *ud),
                          void *ud)
{
    w->sink = sink;
    w->sink_ud = ud;
    atomic_store(&w->live, 1);
}

static int w_on_message(uint64_t stream, const uint8_t *data, size_t len, void *ud)
{
    (void)stream;
    azf__worker_receive(ud, data, len);
    return 0;
}

void azf__worker_receive(azf_worker *w, const uint8_t *data, size_t len)
{
    if (w->exhausted)
        return;
    if (azf__driver_queued(w->driver) >= 2 * AZF__WORKER_SEND_QUEUE_MAX) {
        w->exhausted = 1;
        azf_driver_stop(w->driver);
        return;
    }
    azf__msg *m = NULL;
    azf__errmsg err;
    azf__err_clear(&err);
    int rc = azf__codec_unpack(data, len, &m, &err);
    if (rc) {
        refused(w, data, len, err.text[0] ? err.text : azf_strerror(rc));
        return;
    }
    if (!azf__worker_dispatch(w, m))
        azf__msg_free(m);
}

static void w_on_stream_close(uint64_t stream, int status, const char *message, void *ud)
{
    (void)stream;
    azf_worker *w = ud;
    w->stream_closed = 1;
    w->close_status = status;
    snprintf(w->close_msg, sizeof w->close_msg, "%s", message);
}

static void w_on_error(int code, const char *message, void *ud)
{
    (void)ud;
    azf__log(AZF_LOG_ERROR, "transport error (%s): %s", azf_strerror(code), message);
}

/* ---- public API ---------------------------------------------------------- */

int azf_worker_new(azf_worker **out, const azf_worker_opts *opts)
{
    if (!out || !opts || !opts->uri)
        return AZF_E_INVALID;
    azf_worker *w = azf__calloc(1, sizeof *w);
    if (!w)
        return AZF_E_NOMEM;
    int rc = AZF_E_NOMEM;
    w->opts.provider = opts->provider;
    w->opts.provider_user_data = opts->provider_user_data;
    w->opts.reg = opts->reg;
    if ((opts->runtime_name && !(w->opts.runtime_name = azf__strdup(opts->runtime_name))) ||
        (opts->runtime_version &&
         !(w->opts.runtime_version = azf__strdup(opts->runtime_version))) ||
        (opts->init_error && !(w->opts.init_error = azf__strdup(opts->init_error))))
        goto fail;
    if ((rc = azf__worker_app_init(w)))
        goto fail;
    rc = AZF_E_NOMEM;
    if (!(w->opts.uri = azf__strdup(opts->uri)) ||
        !(w->opts.worker_id = azf__strdup(opts->worker_id ? opts->worker_id : "")) ||
        !(w->opts.request_id = azf__strdup(opts->request_id ? opts->request_id : "")) ||
        azf_transport_opts_new(&w->transport))
        goto fail;
    w->opts.max_message_length = opts->max_message_length;
    if ((rc = azf__transport_opts_copy_into(w->transport, opts->transport)) ||
        (rc = azf_transport_opts_set_max_message_length(w->transport, opts->max_message_length)))
        goto fail;
    azf_transport_callbacks cbs = {w_on_message, w_on_stream_close, w_on_error};
    if ((rc = azf_driver_new(&w->driver, AZF_ROLE_CLIENT, w->transport, &cbs, w)))
        goto fail;
    azf__driver_set_poll(w->driver, IO_POLL_US);
    *out = w;
    return 0;
fail:
    azf_worker_free(w);
    return rc;
}

void azf_worker_free(azf_worker *w)
{
    if (!w)
        return;
    azf__worker_app_free(w);
    azf_driver_free(w->driver);
    azf_transport_opts_free(w->transport);
    azf__free(w->opts.runtime_name);
    azf__free(w->opts.runtime_version);
    azf__free(w->opts.init_error);
    azf__free(w->opts.uri);
    azf__free(w->opts.worker_id);
    azf__free(w->opts.request_id);
    azf__free(w);
}

int azf_worker_run(azf_worker *w)
{
    if (!w)
        return AZF_E_INVALID;
    if (w->ran)
        return azf__err(&w->err, AZF_E_STATE, "azf_worker_run was already called");
    w->ran = 1;
    int rc = azf_driver_connect(w->driver, w->opts.uri, &w->stream);
    if (rc)
        return azf__err(&w->err, rc, "cannot reach the host at %s: %s", w->opts.uri,
                        azf_driver_errmsg(w->driver));
    if ((rc = azf__worker_app_start(w)))
        return azf__err(&w->err, rc, "cannot start the app thread: %s", azf_strerror(rc));
    AZF__PB(StartStream) ss = AZF__PB_INIT(START_STREAM);
    ss.worker_id = w->opts.worker_id;
    azf__msg m = AZF__PB_INIT(STREAMING_MESSAGE);
    m.content_case = AZF__PB_CASE(START_STREAM);
    m.start_stream = &ss;
    if ((rc = azf__worker_send(w, &m))) {
        azf__worker_app_finish(w);
        return azf__err(&w->err, rc, "cannot queue StartStream: %s", azf_strerror(rc));
    }
    atomic_store(&w->live, 1);
    rc = azf_driver_run(w->driver);
    int why = atomic_load(&w->terminating);
    atomic_store(&w->live, 0);
    /* Whatever ended the conversation, every invocation still running is completed. */
    azf__worker_app_finish(w);
    if (w->exhausted)
        return azf__err(&w->err, AZF_E_TOOBIG,
                        "the host stopped reading: more than %zu MiB waited to be sent "
                        "(RESOURCE_EXHAUSTED); the worker ended the conversation",
                        (2 * AZF__WORKER_SEND_QUEUE_MAX) >> 20);
    if (why == 1)
        return azf__err(&w->err, 0, "the host sent WorkerTerminate: work drained, exiting");
    if (why == 2)
        return azf__err(&w->err, 0, "the worker was stopped");
    if (rc)
        return azf__err(&w->err, rc, "the connection to the host was lost: %s",
                        azf_driver_errmsg(w->driver));
    if (w->stream_closed && w->close_status == 0)
        return azf__err(&w->err, 0, "the host ended the stream (grpc-status 0%s%s)",
                        w->close_msg[0] ? ": " : "", w->close_msg);
    if (w->stream_closed)
        return azf__err(&w->err, AZF_E_CLOSED,
                        "the stream to the host ended with grpc-status %d: %s", w->close_status,
                        w->close_msg[0] ? w->close_msg : "(no message)");
    return azf__err(&w->err, AZF_E_CLOSED, "the connection to the host ended unexpectedly");
}

/* Starts a graceful end: the stream is closed after the queued messages. */
void azf__worker_begin_shutdown(azf_worker *w, int why, uint32_t timeout_ms)
{
    int expected = 0;
    atomic_compare_exchange_strong(&w->terminating, &expected, why);
    if (!atomic_exchange(&w->shutdown_started, 1))
        azf_driver_shutdown(w->driver, timeout_ms);
}

int azf_worker_stop(azf_worker *w)
{
    if (!w)
        return AZF_E_INVALID;
    azf__worker_begin_shutdown(w, 2, DEFAULT_GRACE_MS);
    return 0;
}

const char *azf_worker_errmsg(const azf_worker *w)
{
    return w ? w->err.text : "";
}
