/* The worker: command-line parsing, and azfunc-worker against our server role.
 * usage: test_worker [path/to/azfunc-worker] (the end-to-end part needs it). */
#include "azf_test.h"
#include "transport/transport_internal.h"
#include "worker/worker_internal.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- azf_worker_opts_from_args ------------------------------------------- */

static int parse(azf_worker_opts **o, const char *const *argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    azf_worker_opts_new(o);
    return azf_worker_opts_from_args(*o, argc, argv);
}

static void test_args(void)
{
    azf_worker_opts *o;
    /* The host's full command line: both families, plus a worker path and flags
     * we do not know (with and without values). */
    const char *host[] = {"azfunc-worker",
                          "/path/worker.py",
                          "--unknown",
                          "v",
                          "--flag-only",
                          "--host",
                          "127.0.0.1",
                          "--port",
                          "5000",
                          "--workerId",
                          "legacy-w",
                          "--requestId",
                          "legacy-r",
                          "--grpcMaxMessageLength",
                          "2147483647",
                          "--functions-uri",
                          "http://127.0.0.1:6000/",
                          "--functions-worker-id",
                          "new-w",
                          "--functions-request-id",
                          "new-r",
                          "--functions-grpc-max-message-length",
                          "1048576",
                          "--x=1",
                          NULL};
    CHECK_INT(parse(&o, host), 0);
    CHECK_STR(azf_worker_opts_uri(o), "http://127.0.0.1:6000/");
    CHECK_STR(o->worker_id, "new-w");
    CHECK_STR(o->request_id, "new-r");
    CHECK_INT(o->max_message_length, 1048576);
    azf_worker_opts_free(o);

    /* --functions-* first, legacy later: the new family still wins. */
    const char *rev[] = {
        "w", "--functions-worker-id",        "new", "--workerId", "old", "--host", "h", "--port",
        "1", "--functions-uri=https://x:2/", NULL};
    CHECK_INT(parse(&o, rev), 0);
    CHECK_STR(o->worker_id, "new");
    CHECK_STR(azf_worker_opts_uri(o), "https://x:2/");
    azf_worker_opts_free(o);

    /* Legacy family only. */
    const char *legacy[] = {
        "w",          "--host", "127.0.0.1",   "--port", "7071",
        "--workerId", "a",      "--requestId", "b",      "--grpcMaxMessageLength",
        "-1",         NULL};
    CHECK_INT(parse(&o, legacy), 0);
    CHECK_STR(azf_worker_opts_uri(o), "http://127.0.0.1:7071/");
    CHECK_STR(o->request_id, "b");
    CHECK_INT(o->max_message_length, 2147483647);
    azf_worker_opts_free(o);

    /* TLS flags reach the transport options. */
    const char *tls[] = {"w",
                         "--functions-uri",
                         "https://localhost:1/",
                         "--functions-worker-id",
                         "a",
                         "--tls-ca-file",
                         "/ca.pem",
                         "--tls-insecure",
                         "--connect-timeout-ms",
                         "250",
                         NULL};
    CHECK_INT(parse(&o, tls), 0);
    CHECK_STR(o->transport->ca_file, "/ca.pem");
    CHECK_INT(o->transport->tls_verify, 0);
    CHECK_INT(o->transport->connect_timeout_ms, 250);
    azf_worker_opts_free(o);

    /* AZF_TLS_INSECURE and --tls-insecure=V read booleans one way: "false", "no" keep
     * verification on; a word that is not a boolean is an error, never "insecure". */
    static const struct {
        const char *v;
        int rc, verify;
    } insecure[] = {{"1", 0, 0},
                    {"true", 0, 0},
                    {" Yes", 0, 0},
                    {"t", 0, 0},
                    {"0", 0, 1},
                    {"false", 0, 1},
                    {"no", 0, 1},
                    {"N", 0, 1},
                    {"off", AZF_E_INVALID, 1},
                    {"maybe", AZF_E_INVALID, 1}};
    const char *plain[] = {"w", "--functions-uri", "https://h:1/", "--workerId", "a", NULL};
    for (size_t i = 0; i < sizeof insecure / sizeof insecure[0]; i++) {
        setenv("AZF_TLS_INSECURE", insecure[i].v, 1);
        CHECK_INT(parse(&o, plain), insecure[i].rc);
        CHECK_INT(o->transport->tls_verify, insecure[i].verify);
        if (insecure[i].rc)
            CHECK(strstr(azf_worker_opts_errmsg(o), "AZF_TLS_INSECURE") != NULL);
        azf_worker_opts_free(o);
    }
    unsetenv("AZF_TLS_INSECURE");
    const char *flag_false[] = {
        "w", "--functions-uri", "https://h:1/", "--workerId", "a", "--tls-insecure=false", NULL};
    CHECK_INT(parse(&o, flag_false), 0);
    CHECK_INT(o->transport->tls_verify, 1);
    azf_worker_opts_free(o);

    /* Bad values: clear errors. */
    const char *badport[] = {"w", "--host", "h", "--port", "http", "--workerId", "a", NULL};
    CHECK_INT(parse(&o, badport), AZF_E_INVALID);
    CHECK(strstr(azf_worker_opts_errmsg(o), "--port") != NULL);
    azf_worker_opts_free(o);
    const char *bigport[] = {"w", "--host", "h", "--port", "70000", "--workerId", "a", NULL};
    CHECK_INT(parse(&o, bigport), AZF_E_INVALID);
    azf_worker_opts_free(o);
    const char *badmax[] = {"w",           "--functions-uri",
                            "http://h:1/", "--workerId",
                            "a",           "--functions-grpc-max-message-length",
                            "lots",        NULL};
    CHECK_INT(parse(&o, badmax), AZF_E_INVALID);
    CHECK(strstr(azf_worker_opts_errmsg(o), "--functions-grpc-max-message-length") != NULL);
    azf_worker_opts_free(o);
    const char *baduri[] = {"w", "--functions-uri", "ftp://h/", "--workerId", "a", NULL};
    CHECK_INT(parse(&o, baduri), AZF_E_INVALID);
    azf_worker_opts_free(o);
    const char *novalue[] = {"w", "--functions-uri", "http://h:1/", "--workerId", NULL};
    CHECK_INT(parse(&o, novalue), AZF_E_INVALID);
    CHECK(strstr(azf_worker_opts_errmsg(o), "needs a value") != NULL);
    azf_worker_opts_free(o);
    const char *nohost[] = {"w", "--workerId", "a", NULL};
    CHECK_INT(parse(&o, nohost), AZF_E_INVALID);
    CHECK(strstr(azf_worker_opts_errmsg(o), "no host address") != NULL);
    azf_worker_opts_free(o);
    const char *hostonly[] = {"w", "--host", "h", "--workerId", "a", NULL};
    CHECK_INT(parse(&o, hostonly), AZF_E_INVALID);
    azf_worker_opts_free(o);
    const char *noid[] = {"w", "--functions-uri", "http://h:1/", NULL};
    CHECK_INT(parse(&o, noid), AZF_E_INVALID);
    azf_worker_opts_free(o);

    azf_worker *w;
    azf_worker_opts_new(&o);
    CHECK_INT(azf_worker_new(&w, o), AZF_E_INVALID); /* no URI */
    azf_worker_opts_free(o);
}

/* ---- end to end: azfunc-worker against our server role -------------------- */

typedef struct host {
    azf_driver *d;
    pthread_t th;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    azf__msg *q[64];
    int head, tail;
    uint64_t stream;
    int closed, close_status;
} host;

static int h_on_message(uint64_t stream, const uint8_t *data, size_t len, void *ud)
{
    host *h = ud;
    azf__msg *m = azure_functions_rpc_messages__streaming_message__unpack(NULL, len, data);
    pthread_mutex_lock(&h->mu);
    h->stream = stream;
    if (m && h->tail - h->head < 64)
        h->q[h->tail++ % 64] = m;
    else if (m)
        azure_functions_rpc_messages__streaming_message__free_unpacked(m, NULL);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    return 0;
}

static void h_on_close(uint64_t stream, int status, const char *message, void *ud)
{
    (void)stream;
    (void)message;
    host *h = ud;
    pthread_mutex_lock(&h->mu);
    h->closed++;
    h->close_status = status;
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
}

static void *h_run(void *arg)
{
    host *h = arg;
    azf_driver_run(h->d);
    return NULL;
}

static int host_start(host *h)
{
    memset(h, 0, sizeof *h);
    pthread_mutex_init(&h->mu, NULL);
    pthread_cond_init(&h->cv, NULL);
    azf_transport_callbacks *cb;
    azf_transport_callbacks_new(&cb);
    azf_transport_callbacks_set_on_message(cb, h_on_message);
    azf_transport_callbacks_set_on_stream_close(cb, h_on_close);
    CHECK_INT(azf_driver_new(&h->d, AZF_ROLE_SERVER, NULL, cb, h), 0);
    azf_transport_callbacks_free(cb);
    CHECK_INT(azf_driver_listen(h->d, "127.0.0.1", 0), 0);
    pthread_create(&h->th, NULL, h_run, h);
    return azf_driver_port(h->d);
}

static void host_stop(host *h)
{
    azf_driver_stop(h->d);
    pthread_join(h->th, NULL);
    azf_driver_free(h->d);
    while (h->head < h->tail)
        azure_functions_rpc_messages__streaming_message__free_unpacked(h->q[h->head++ % 64], NULL);
}

/* Next message from the worker (ctest's timeout catches a silent worker). */
static azf__msg *next(host *h)
{
    pthread_mutex_lock(&h->mu);
    while (h->head == h->tail)
        pthread_cond_wait(&h->cv, &h->mu);
    azf__msg *m = h->q[h->head++ % 64];
    pthread_mutex_unlock(&h->mu);
    return m;
}

/* Next non-log message; a log whose text contains `log_has` sets *seen. */
static azf__msg *expect(host *h, int content_case, const char *log_has, int *seen)
{
    for (;;) {
        azf__msg *m = next(h);
        if (m->content_case == AZF__PB_CASE(RPC_LOG)) {
            if (log_has && strstr(m->rpc_log->message, log_has) && seen &&
                m->rpc_log->log_category ==
                    AZURE_FUNCTIONS_RPC_MESSAGES__RPC_LOG__RPC_LOG_CATEGORY__System)
                *seen = 1;
            azure_functions_rpc_messages__streaming_message__free_unpacked(m, NULL);
            if (seen && *seen && content_case == AZF__PB_CASE(RPC_LOG))
                return NULL;
            continue;
        }
        CHECK_INT(m->content_case, content_case);
        return m;
    }
}

static void host_send(host *h, azf__msg *m)
{
    size_t n = protobuf_c_message_get_packed_size(&m->base);
    azf_buf b = AZF_BUF_INIT;
    azf_buf_grow(&b, n);
    b.size = protobuf_c_message_pack(&m->base, (uint8_t *)b.ptr);
    pthread_mutex_lock(&h->mu); /* the I/O thread writes it on every message (TSan) */
    uint64_t stream = h->stream;
    pthread_mutex_unlock(&h->mu);
    CHECK_INT(azf_driver_send(h->d, stream, &b), 0);
}

static pid_t spawn(const char *exe, int port, const char *extra)
{
    char p[16], uri[64];
    snprintf(p, sizeof p, "%d", port);
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/", port);
    pid_t pid = fork();
    if (pid == 0) {
        execl(exe, exe, "--host", "127.0.0.1", "--port", p, "--workerId", "wid-1", "--requestId",
              "rid-1", "--grpcMaxMessageLength", "2147483647", "--functions-uri", uri,
              "--functions-worker-id", "wid-1", "--functions-request-id", "rid-1",
              "--functions-grpc-max-message-length", "2147483647", "--some-new-flag", "value",
              extra, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static int wait_exit(pid_t pid)
{
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static const char *cap(const AZF__PB(WorkerInitResponse) * r, const char *key)
{
    for (size_t i = 0; i < r->n_capabilities; i++)
        if (strcmp(r->capabilities[i]->key, key) == 0)
            return r->capabilities[i]->value;
    return NULL;
}

#define FREE(m) azure_functions_rpc_messages__streaming_message__free_unpacked(m, NULL)

static void test_conversation(const char *exe)
{
    host h;
    int port = host_start(&h);
    pid_t pid = spawn(exe, port, NULL);

    azf__msg *m = expect(&h, AZF__PB_CASE(START_STREAM), NULL, NULL);
    CHECK_STR(m->start_stream->worker_id, "wid-1");
    CHECK_STR(m->request_id, "rid-1");
    FREE(m);

    AZF__PB(WorkerInitRequest) init = AZF__PB_INIT(WORKER_INIT_REQUEST);
    init.host_version = "4.1037.0";
    azf__msg out = AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(WORKER_INIT_REQUEST);
    out.worker_init_request = &init;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(WORKER_INIT_RESPONSE), NULL, NULL);
    AZF__PB(WorkerInitResponse) *ir = m->worker_init_response;
    CHECK_STR(m->request_id, "rid-1");
    CHECK(ir->result && ir->result->status == AZF__PB_SUCCESS);
    const char *want[] = {"RawHttpBodyBytes",
                          "TypedDataCollection",
                          "RpcHttpBodyOnly",
                          "WorkerStatus",
                          "RpcHttpTriggerMetadataRemoved",
                          "HandlesWorkerTerminateMessage",
                          "HandlesInvocationCancelMessage",
                          "SharedMemoryDataTransfer"};
    for (size_t i = 0; i < 8; i++)
        CHECK_STR(cap(ir, want[i]), "true");
    CHECK_INT(ir->n_capabilities, 8);
    CHECK(ir->worker_metadata != NULL);
    if (ir->worker_metadata) {
        CHECK_STR(ir->worker_metadata->runtime_name, "python");
        CHECK_STR(ir->worker_metadata->worker_version, azf_version());
        CHECK(ir->worker_metadata->worker_bitness[0] != '\0');
        CHECK(strchr(ir->worker_metadata->runtime_version, '.') != NULL);
    }
    FREE(m);

    /* Status probe: the request id is echoed. */
    AZF__PB(WorkerStatusRequest) sr = AZF__PB_INIT(WORKER_STATUS_REQUEST);
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.request_id = "probe-guid";
    out.content_case = AZF__PB_CASE(WORKER_STATUS_REQUEST);
    out.worker_status_request = &sr;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(WORKER_STATUS_RESPONSE), NULL, NULL);
    CHECK_STR(m->request_id, "probe-guid");
    FREE(m);

    /* An unsupported message type and an unknown oneof member: System logs only. */
    AZF__PB(WorkerHeartbeat) hb = AZF__PB_INIT(WORKER_HEARTBEAT);
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(WORKER_HEARTBEAT);
    out.worker_heartbeat = &hb;
    host_send(&h, &out);
    int seen = 0;
    expect(&h, AZF__PB_CASE(RPC_LOG), "worker_heartbeat", &seen);
    CHECK(seen);
    static const uint8_t unknown[] = {0x0a, 0x01, 'x', 0x9a, 0x06, 0x00}; /* field 99 */
    azf_buf b = AZF_BUF_INIT;
    azf_buf_set(&b, unknown, sizeof unknown);
    azf_driver_send(h.d, h.stream, &b);
    seen = 0;
    expect(&h, AZF__PB_CASE(RPC_LOG), "no content known", &seen);
    CHECK(seen);
    /* Bytes that are not a StreamingMessage at all. */
    azf_buf_set(&b, "\xff\xff\xff", 3);
    azf_driver_send(h.d, h.stream, &b);
    seen = 0;
    expect(&h, AZF__PB_CASE(RPC_LOG), "cannot decode", &seen);
    CHECK(seen);

    /* Metadata: default indexing, request id echoed. */
    AZF__PB(FunctionsMetadataRequest) mr = AZF__PB_INIT(FUNCTIONS_METADATA_REQUEST);
    mr.function_app_directory = "/app";
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.request_id = "meta-1";
    out.content_case = AZF__PB_CASE(FUNCTIONS_METADATA_REQUEST);
    out.functions_metadata_request = &mr;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(FUNCTION_METADATA_RESPONSE), NULL, NULL);
    CHECK_STR(m->request_id, "meta-1");
    CHECK(m->function_metadata_response->use_default_metadata_indexing);
    CHECK(m->function_metadata_response->result->status == AZF__PB_SUCCESS);
    FREE(m);

    /* Load of a function whose code is nowhere: a Failure, remembered. */
    AZF__PB(RpcFunctionMetadata) md = AZF__PB_INIT(RPC_FUNCTION_METADATA);
    md.name = "hello";
    AZF__PB(FunctionLoadRequest) lr = AZF__PB_INIT(FUNCTION_LOAD_REQUEST);
    lr.function_id = "fid-1";
    lr.metadata = &md;
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(FUNCTION_LOAD_REQUEST);
    out.function_load_request = &lr;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(FUNCTION_LOAD_RESPONSE), NULL, NULL);
    CHECK_STR(m->request_id, "rid-1");
    CHECK_STR(m->function_load_response->function_id, "fid-1");
    CHECK(m->function_load_response->result->status == AZF__PB_FAILURE);
    char load_error[512];
    snprintf(load_error, sizeof load_error, "%s",
             m->function_load_response->result->exception->message);
    CHECK(strstr(load_error, "hello") != NULL);
    FREE(m);

    /* Invocations: exactly one failure response each, replaying the load error. */
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "inv-%d", i);
        AZF__PB(InvocationRequest) inv = AZF__PB_INIT(INVOCATION_REQUEST);
        inv.invocation_id = id;
        inv.function_id = "fid-1";
        out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
        out.content_case = AZF__PB_CASE(INVOCATION_REQUEST);
        out.invocation_request = &inv;
        host_send(&h, &out);
    }
    for (int i = 0; i < 3; i++) {
        char id[16];
        snprintf(id, sizeof id, "inv-%d", i);
        m = expect(&h, AZF__PB_CASE(INVOCATION_RESPONSE), NULL, NULL);
        CHECK_STR(m->invocation_response->invocation_id, id);
        CHECK(m->invocation_response->result->status == AZF__PB_FAILURE);
        CHECK_STR(m->invocation_response->result->exception->message, load_error);
        FREE(m);
    }

    /* Environment reload. */
    AZF__PB(FunctionEnvironmentReloadRequest)
    er = AZF__PB_INIT(FUNCTION_ENVIRONMENT_RELOAD_REQUEST);
    er.function_app_directory = "/"; /* the worker changes into it */
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_REQUEST);
    out.function_environment_reload_request = &er;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(FUNCTION_ENVIRONMENT_RELOAD_RESPONSE), NULL, NULL);
    CHECK(m->function_environment_reload_response->result->status == AZF__PB_SUCCESS);
    CHECK_STR(m->function_environment_reload_response->worker_metadata->runtime_name, "python");
    FREE(m);

    /* Terminate: the worker drains and exits 0. */
    AZF__PB(Duration) grace = AZF__PB_INIT(DURATION);
    grace.seconds = 5;
    AZF__PB(WorkerTerminate) wt = AZF__PB_INIT(WORKER_TERMINATE);
    wt.grace_period = &grace;
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(WORKER_TERMINATE);
    out.worker_terminate = &wt;
    host_send(&h, &out);
    CHECK_INT(wait_exit(pid), 0);
    host_stop(&h);
}

static void test_host_ends(const char *exe)
{
    /* The host fails the stream: the worker exits non-zero. */
    host h;
    int port = host_start(&h);
    pid_t pid = spawn(exe, port, NULL);
    azf__msg *m = expect(&h, AZF__PB_CASE(START_STREAM), NULL, NULL);
    FREE(m);
    azf_driver_close_stream(h.d, h.stream, AZF_GRPC_INTERNAL, "host is going away");
    CHECK_INT(wait_exit(pid), 1);
    host_stop(&h);

    /* The host closes the stream normally: exit 0. */
    port = host_start(&h);
    pid = spawn(exe, port, NULL);
    m = expect(&h, AZF__PB_CASE(START_STREAM), NULL, NULL);
    FREE(m);
    azf_driver_close_stream(h.d, h.stream, AZF_GRPC_OK, NULL);
    CHECK_INT(wait_exit(pid), 0);
    host_stop(&h);

    /* The host vanishes (connection dropped): exit non-zero. */
    port = host_start(&h);
    pid = spawn(exe, port, NULL);
    m = expect(&h, AZF__PB_CASE(START_STREAM), NULL, NULL);
    FREE(m);
    host_stop(&h);
    CHECK_INT(wait_exit(pid), 1);

    /* A message over the worker's limit: it fails the stream and exits 1. */
    port = host_start(&h);
    pid = spawn(exe, port, "--functions-grpc-max-message-length=1000");
    m = expect(&h, AZF__PB_CASE(START_STREAM), NULL, NULL);
    FREE(m);
    azf_buf big = AZF_BUF_INIT;
    azf_buf_grow(&big, 2000);
    memset(big.ptr, 'x', 2000);
    big.size = 2000;
    azf_driver_send(h.d, h.stream, &big);
    CHECK_INT(wait_exit(pid), 1);
    pthread_mutex_lock(&h.mu);
    while (!h.closed)
        pthread_cond_wait(&h.cv, &h.mu);
    pthread_mutex_unlock(&h.mu);
    CHECK_INT(h.close_status, AZF_GRPC_CANCELLED);
    host_stop(&h);

    /* Nobody listens: a bounded connect timeout, exit 1. */
    port = host_start(&h);
    host_stop(&h);
    pid = spawn(exe, port, "--connect-timeout-ms=300");
    CHECK_INT(wait_exit(pid), 1);
}

/* ---- a native worker: a registry of C handlers, no provider, no Python ---- */

static azf_invocation *g_hung;

static int native_invoke(azf_invocation *inv, void *ud)
{
    (void)ud;
    if (strcmp(azf_function_name(azf_invocation_function(inv)), "hang") == 0) {
        g_hung = inv; /* completed by cancel, or by the test after the worker is gone */
        return 0;
    }
    azf_invocation_log(inv, AZF_LOG_WARNING, "native.logger", "hi");
    azf_value *v;
    azf_value_new_string(&v, "pong");
    azf_invocation_set_return(inv, v);
    return azf_invocation_complete(inv);
}

static void native_cancel(azf_invocation *inv, void *ud)
{
    (void)ud;
    g_hung = NULL;
    azf_invocation_complete_cancelled(inv);
}

static void *worker_thread(void *arg)
{
    return (void *)(intptr_t)azf_worker_run(arg);
}

static void send_invocation(host *h, const char *id, const char *fid)
{
    AZF__PB(InvocationRequest) inv = AZF__PB_INIT(INVOCATION_REQUEST);
    inv.invocation_id = (char *)id;
    inv.function_id = (char *)fid;
    azf__msg out = AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(INVOCATION_REQUEST);
    out.invocation_request = &inv;
    host_send(h, &out);
}

static void test_native_worker(void)
{
    azf_registry *reg;
    azf_handler *hd;
    CHECK_INT(azf_registry_new(&reg), 0);
    azf_handler_new(&hd);
    azf_handler_set_invoke(hd, native_invoke);
    azf_handler_set_cancel(hd, native_cancel);
    static const char *fns[] = {
        "{\"name\":\"ping\",\"functionId\":\"ping-id\",\"bindings\":["
        "{\"name\":\"req\",\"type\":\"httpTrigger\",\"direction\":\"in\"},"
        "{\"name\":\"$return\",\"type\":\"http\",\"direction\":\"out\"}]}",
        "{\"name\":\"hang\",\"functionId\":\"hang-id\",\"bindings\":["
        "{\"name\":\"t\",\"type\":\"queueTrigger\",\"direction\":\"in\"}]}"};
    for (size_t i = 0; i < 2; i++)
        CHECK_INT(azf_registry_add(reg, fns[i], hd, NULL), 0);
    azf_handler_free(hd);

    host h;
    int port = host_start(&h);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/", port);
    azf_worker_opts *o;
    azf_worker_opts_new(&o);
    azf_worker_opts_set_uri(o, uri);
    azf_worker_opts_set_worker_id(o, "native");
    azf_worker_opts_set_request_id(o, "rid-n");
    CHECK_INT(azf_worker_opts_set_registry(o, reg), 0);
    CHECK_INT(azf_worker_opts_set_runtime(o, "native", "1.0"), 0);
    azf_worker *w;
    CHECK_INT(azf_worker_new(&w, o), 0);
    azf_worker_opts_free(o);
    CHECK(azf_worker_registry(w) == reg);
    pthread_t th;
    pthread_create(&th, NULL, worker_thread, w);
    FREE(expect(&h, AZF__PB_CASE(START_STREAM), NULL, NULL));

    AZF__PB(WorkerInitRequest) init = AZF__PB_INIT(WORKER_INIT_REQUEST);
    azf__msg out = AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(WORKER_INIT_REQUEST);
    out.worker_init_request = &init;
    host_send(&h, &out);
    azf__msg *m = expect(&h, AZF__PB_CASE(WORKER_INIT_RESPONSE), NULL, NULL);
    CHECK_STR(m->worker_init_response->worker_metadata->runtime_name, "native");
    CHECK_STR(m->worker_init_response->worker_metadata->runtime_version, "1.0");
    FREE(m);

    /* Metadata: the registry's functions, no default indexing. */
    AZF__PB(FunctionsMetadataRequest) mr = AZF__PB_INIT(FUNCTIONS_METADATA_REQUEST);
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.request_id = "meta-n";
    out.content_case = AZF__PB_CASE(FUNCTIONS_METADATA_REQUEST);
    out.functions_metadata_request = &mr;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(FUNCTION_METADATA_RESPONSE), NULL, NULL);
    CHECK(!m->function_metadata_response->use_default_metadata_indexing);
    CHECK_INT(m->function_metadata_response->n_function_metadata_results, 2);
    CHECK_STR(m->function_metadata_response->function_metadata_results[0]->function_id, "ping-id");
    FREE(m);

    /* A registered id loads at once. */
    AZF__PB(RpcFunctionMetadata) md = AZF__PB_INIT(RPC_FUNCTION_METADATA);
    md.name = "ping";
    AZF__PB(FunctionLoadRequest) lr = AZF__PB_INIT(FUNCTION_LOAD_REQUEST);
    lr.function_id = "ping-id";
    lr.metadata = &md;
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(FUNCTION_LOAD_REQUEST);
    out.function_load_request = &lr;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(FUNCTION_LOAD_RESPONSE), NULL, NULL);
    CHECK(m->function_load_response->result->status == AZF__PB_SUCCESS);
    FREE(m);

    /* An invocation: its User log comes before its response. */
    send_invocation(&h, "inv-n1", "ping-id");
    int user_log = 0;
    for (;;) {
        m = next(&h);
        if (m->content_case == AZF__PB_CASE(RPC_LOG)) {
            if (strcmp(m->rpc_log->invocation_id, "inv-n1") == 0) {
                CHECK_STR(m->rpc_log->message, "hi");
                CHECK_STR(m->rpc_log->category, "native.logger");
                CHECK_INT(m->rpc_log->level, AZF_LOG_WARNING);
                CHECK(m->rpc_log->log_category ==
                      AZURE_FUNCTIONS_RPC_MESSAGES__RPC_LOG__RPC_LOG_CATEGORY__User);
                user_log = 1;
            }
            FREE(m);
            continue;
        }
        break;
    }
    CHECK(user_log);
    CHECK_INT(m->content_case, AZF__PB_CASE(INVOCATION_RESPONSE));
    CHECK_STR(m->invocation_response->invocation_id, "inv-n1");
    CHECK(m->invocation_response->result->status == AZF__PB_SUCCESS);
    CHECK_STR(m->invocation_response->return_value->string, "pong");
    FREE(m);

    /* Cancel reaches the handler; the answer is Cancelled. */
    send_invocation(&h, "inv-n2", "hang-id");
    AZF__PB(InvocationCancel) ic = AZF__PB_INIT(INVOCATION_CANCEL);
    ic.invocation_id = "inv-n2";
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(INVOCATION_CANCEL);
    out.invocation_cancel = &ic;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(INVOCATION_RESPONSE), NULL, NULL);
    CHECK_STR(m->invocation_response->invocation_id, "inv-n2");
    CHECK(m->invocation_response->result->status ==
          AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Cancelled);
    FREE(m);

    /* Terminate with an invocation its handler never completes: the worker answers it
     * when the grace period runs out, and the run ends with 0. */
    send_invocation(&h, "inv-n3", "hang-id");
    AZF__PB(Duration) grace = AZF__PB_INIT(DURATION);
    grace.seconds = 2;
    AZF__PB(WorkerTerminate) wt = AZF__PB_INIT(WORKER_TERMINATE);
    wt.grace_period = &grace;
    out = (azf__msg)AZF__PB_INIT(STREAMING_MESSAGE);
    out.content_case = AZF__PB_CASE(WORKER_TERMINATE);
    out.worker_terminate = &wt;
    host_send(&h, &out);
    m = expect(&h, AZF__PB_CASE(INVOCATION_RESPONSE), NULL, NULL);
    CHECK_STR(m->invocation_response->invocation_id, "inv-n3");
    CHECK(m->invocation_response->result->status == AZF__PB_FAILURE);
    CHECK(strncmp(m->invocation_response->result->exception->message, "TimeoutError: ", 14) == 0);
    FREE(m);
    void *rc;
    pthread_join(th, &rc);
    CHECK_INT((int)(intptr_t)rc, 0);
    azf_worker_free(w);
    /* The late completion finds the worker gone: no second answer, nothing leaks. */
    CHECK(g_hung != NULL);
    if (g_hung)
        CHECK_INT(azf_invocation_complete(g_hung), 0);
    host_stop(&h);
    azf_registry_free(reg);
}

int main(int argc, char **argv)
{
    RUN(test_args());
    RUN(test_native_worker());
    if (argc > 1) {
        RUN(test_conversation(argv[1]));
        RUN(test_host_ends(argv[1]));
    }
    TEST_MAIN_END();
}
