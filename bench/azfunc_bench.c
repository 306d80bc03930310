/* azfunc-bench: plays the Functions host for any worker command and measures it.
 *
 *   azfunc-bench [options] SCENARIO -- WORKER_CMD [ARGS...]
 *
 * The worker is started as the host starts it (host-protocol §2.1): the host's
 * arguments in both families are appended, the cwd is the app root and the
 * host's environment variables are set. The bench then runs StartStream ->
 * WorkerInit -> FunctionsMetadata -> FunctionLoad and the scenario. It is one
 * thread on libazfunc's server-role driver, plus a watchdog thread (deadline,
 * child exit, delayed messages). See bench/README.md.
 */
#include "azfunc/azfunc.h"

#include "FunctionRpc.pb-c.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PB(name) AzureFunctionsRpcMessages__##name
#define PB_INIT(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__##NAME##__INIT
#define PB_CASE(NAME) AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__CONTENT_##NAME
#define ST_SUCCESS AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Success
#define ST_CANCELLED AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Cancelled
typedef PB(StreamingMessage) msg_t;

/* ---- configuration ------------------------------------------------------ */

typedef struct cfg {
    const char *scenario;
    char **wcmd; /* worker command, NULL-terminated */
    int wargc;
    char app[PATH_MAX];
    long n;         /* invocations */
    int k;          /* in flight */
    int reps;       /* coldstart repetitions */
    int worker_cpu; /* -1: no pinning */
    double timeout_s;
    long max_msg; /* 0: the host's int.MaxValue */
    const char *json_path;
    const char *worker_log;
    int no_indexing;       /* no FunctionsMetadataRequest: the host indexes function.json */
    int legacy_args;       /* only --host/--port/... (workers that predate --functions-*) */
    double grace_slack;    /* fault-terminate: extra seconds allowed (sanitizer builds) */
    double max_rss_growth; /* soak: fail above this % (0: report only) */
    int check;             /* exit 1 when a correctness check fails */
} cfg;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("azfunc-bench: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static void guid(char out[37])
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY);
    if (fd < 0 || read(fd, b, sizeof b) != (ssize_t)sizeof b)
        die("cannot read /dev/urandom");
    close(fd);
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

/* ---- /proc ---------------------------------------------------------------- */

/* VmRSS / VmHWM in kB, or -1. */
static long proc_status_kb(pid_t pid, const char *key)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long v = -1;
    size_t kl = strlen(key);
    while (fgets(line, sizeof line, f))
        if (!strncmp(line, key, kl) && line[kl] == ':') {
            v = strtol(line + kl + 1, NULL, 10);
            break;
        }
    fclose(f);
    return v;
}

/* Resets VmHWM to the current RSS (clear_refs 5). */
static void proc_reset_hwm(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/clear_refs", (int)pid);
    int fd = open(path, O_WRONLY);
    if (fd >= 0) {
        if (write(fd, "5", 1) < 0) { /* older kernels: HWM stays monotonic */
        }
        close(fd);
    }
}

/* utime + stime of a process in seconds, or -1. */
static double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ---- one worker run ------------------------------------------------------- */

enum { PH_START, PH_INIT, PH_META, PH_LOAD, PH_RUN, PH_DONE };
enum { MAX_FN = 32 };

/* The bench app's functions, by the name the scenarios use. */
enum { F_HELLO, F_ECHO, F_SLEEP, F_ASLEEP0, F_SLOW, F_BOOM, F_LOGTHREADS, F_BLOCK, F_COUNT };
static const char *const fn_names[F_COUNT] = {"hello", "echo", "sleep",      "asleep0",
                                              "slow",  "boom", "logthreads", "block"};

typedef struct fn {
    char *name, *id;
    char *raw_json;           /* JSON array: raw binding strings, or function.json objects */
    char *v1_dir, *v1_script; /* set for v1 functions (the host indexed function.json) */
} fn;

typedef struct run run;
typedef void (*pump_fn)(run *r);

struct run {
    const cfg *c;
    azf_driver *d;
    uint64_t stream;
    pid_t pid;
    char wid[37], rid[37];
    int phase;
    double t_spawn, t_start, t_init, t_meta, t_loaded;
    fn fns[MAX_FN];
    int nfn, loads_pending, load_failed, meta_failed, meta_default;
    int fidx[F_COUNT]; /* index into fns, or -1 */
    /* invocations */
    long target, sent, done, ok, failed, cancelled, dup, unknown;
    int inflight, k;
    double *t_sent; /* per invocation id */
    uint8_t *seen;  /* responses per invocation id */
    double *lat_us; /* latency samples */
    long nlat, warmup;
    double t_first, t_last;
    long resp_body_len;
    pump_fn pump;
    /* rss / cpu */
    long rss_idle_kb, rss_mid_kb, rss_end_kb, rss_peak_kb;
    double wcpu0, scpu0, wcpu1, scpu1;
    /* shutdown and faults */
    _Atomic int stopped, stream_closed, child_exited, timed_out; /* shared with the watchdog */
    int close_status, child_status, errors;
    char close_msg[256];
    double t_closed, t_exit, t_kill, t_terminate;
    char first_failure[256];
    _Atomic double terminate_at; /* watchdog sends WorkerTerminate then */
    int terminate_grace_ms;
    int stop_after_meta;
    int verbose;
};

static void stop(run *r)
{
    if (!r->stopped) {
        r->stopped = 1;
        azf_driver_stop(r->d);
    }
}

/* The scenario is over: end the stream as the host does (grpc-status OK, GOAWAY). */
static void finish(run *r)
{
    if (!r->stopped) {
        r->stopped = 1;
        r->phase = PH_DONE;
        azf_driver_shutdown(r->d, 2000);
    }
}

static int send_msg(run *r, const msg_t *m)
{
    size_t len = azure_functions_rpc_messages__streaming_message__get_packed_size(m);
    azf_buf b = AZF_BUF_INIT;
    if (azf_buf_grow(&b, len))
        die("out of memory");
    azure_functions_rpc_messages__streaming_message__pack(m, (uint8_t *)b.ptr);
    b.size = len;
    int rc = azf_driver_send(r->d, r->stream, &b);
    azf_buf_dispose(&b);
    return rc;
}

static void send_init(run *r)
{
    PB(WorkerInitRequest__CapabilitiesEntry) cap = PB_INIT(WORKER_INIT_REQUEST__CAPABILITIES_ENTRY);
    cap.key = "MultiStream";
    cap.value = "10";
    PB(WorkerInitRequest__CapabilitiesEntry) * caps[] = {&cap};
    PB(WorkerInitRequest) req = PB_INIT(WORKER_INIT_REQUEST);
    req.host_version = "4.1037.0.0";
    req.n_capabilities = 1;
    req.capabilities = caps;
    req.worker_directory = (char *)r->c->app;
    req.function_app_directory = (char *)r->c->app;
    msg_t m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = "";
    m.content_case = PB_CASE(WORKER_INIT_REQUEST);
    m.worker_init_request = &req;
    send_msg(r, &m);
}

static void send_meta(run *r)
{
    PB(FunctionsMetadataRequest) req = PB_INIT(FUNCTIONS_METADATA_REQUEST);
    req.function_app_directory = (char *)r->c->app;
    msg_t m = PB_INIT(STREAMING_MESSAGE);
    char rid[37];
    guid(rid);
    m.request_id = rid;
    m.content_case = PB_CASE(FUNCTIONS_METADATA_REQUEST);
    m.functions_metadata_request = &req;
    send_msg(r, &m);
}

/* The host rebuilds `bindings` from raw_bindings (host-protocol §3.1). */
static void send_load(run *r, const fn *f)
{
    enum { MAXB = 8 };
    PB(RpcFunctionMetadata__BindingsEntry) be[MAXB], *bp[MAXB];
    PB(BindingInfo) bi[MAXB];
    size_t nb = 0;
    cJSON *arr = f->raw_json ? cJSON_Parse(f->raw_json) : NULL;
    cJSON *it;
    cJSON_ArrayForEach(it, arr)
    {
        if (nb == MAXB)
            break;
        cJSON *b = cJSON_IsString(it) ? cJSON_Parse(it->valuestring) : cJSON_Duplicate(it, 1);
        if (!b)
            continue;
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItem(b, "name"));
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItem(b, "type"));
        const char *dir = cJSON_GetStringValue(cJSON_GetObjectItem(b, "direction"));
        PB(BindingInfo) info = PB_INIT(BINDING_INFO);
        info.type = strdup(type ? type : "");
        info.direction = dir && !strcasecmp(dir, "out")     ? 1
                         : dir && !strcasecmp(dir, "inout") ? 2
                                                            : 0;
        bi[nb] = info;
        PB(RpcFunctionMetadata__BindingsEntry) e = PB_INIT(RPC_FUNCTION_METADATA__BINDINGS_ENTRY);
        e.key = strdup(name ? name : "");
        e.value = &bi[nb];
        be[nb] = e;
        bp[nb] = &be[nb];
        nb++;
        cJSON_Delete(b);
    }
    cJSON_Delete(arr);
    PB(RpcFunctionMetadata__PropertiesEntry)
    prop = PB_INIT(RPC_FUNCTION_METADATA__PROPERTIES_ENTRY);
    prop.key = "worker_indexed";
    prop.value = "True";
    PB(RpcFunctionMetadata__PropertiesEntry) * props[] = {&prop};
    PB(RpcFunctionMetadata) md = PB_INIT(RPC_FUNCTION_METADATA);
    md.name = f->name;
    md.n_bindings = nb;
    md.bindings = bp;
    if (f->v1_dir) { /* v1: what the host sends from function.json (host-protocol §5.1) */
        md.directory = f->v1_dir;
        md.script_file = f->v1_script;
        md.entry_point = "";
    } else {
        md.directory = (char *)r->c->app;
        md.script_file = "function_app.py";
        md.entry_point = f->name;
        md.n_properties = 1;
        md.properties = props;
    }
    PB(FunctionLoadRequest) req = PB_INIT(FUNCTION_LOAD_REQUEST);
    req.function_id = f->id;
    req.metadata = &md;
    msg_t m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = "";
    m.content_case = PB_CASE(FUNCTION_LOAD_REQUEST);
    m.function_load_request = &req;
    send_msg(r, &m);
    for (size_t i = 0; i < nb; i++) {
        free(bi[i].type);
        free(be[i].key);
    }
}

/* Sends invocation number i of function f with a request body. */
static void send_inv(run *r, int f, long i, const uint8_t *body, size_t blen)
{
    char id[32], url[128];
    snprintf(id, sizeof id, "%ld", i);
    const char *name = fn_names[f];
    snprintf(url, sizeof url, "http://localhost:7071/api/%s", name);
    PB(TypedData) bd = PB_INIT(TYPED_DATA);
    bd.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_BYTES;
    bd.bytes.data = (uint8_t *)body;
    bd.bytes.len = blen;
    PB(RpcHttp__HeadersEntry) h = PB_INIT(RPC_HTTP__HEADERS_ENTRY);
    h.key = "content-type";
    h.value = "application/octet-stream";
    PB(RpcHttp__HeadersEntry) * hs[] = {&h};
    PB(RpcHttp) http = PB_INIT(RPC_HTTP);
    http.method = blen ? "POST" : "GET";
    http.url = url;
    http.n_headers = 1;
    http.headers = hs;
    if (blen)
        http.body = &bd;
    PB(TypedData) td = PB_INIT(TYPED_DATA);
    td.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_HTTP;
    td.http = &http;
    PB(ParameterBinding) pb = PB_INIT(PARAMETER_BINDING);
    pb.name = "req";
    pb.rpc_data_case = AZURE_FUNCTIONS_RPC_MESSAGES__PARAMETER_BINDING__RPC_DATA_DATA;
    pb.data = &td;
    PB(ParameterBinding) * pbs[] = {&pb};
    PB(RpcTraceContext) tc = PB_INIT(RPC_TRACE_CONTEXT);
    tc.trace_parent = "";
    tc.trace_state = "";
    PB(InvocationRequest) req = PB_INIT(INVOCATION_REQUEST);
    req.invocation_id = id;
    int fi = r->fidx[f];
    req.function_id = fi >= 0 ? r->fns[fi].id : (char *)name;
    req.n_input_data = 1;
    req.input_data = pbs;
    req.trace_context = &tc;
    msg_t m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = "";
    m.content_case = PB_CASE(INVOCATION_REQUEST);
    m.invocation_request = &req;
    double t = now_s();
    if (!r->t_first)
        r->t_first = t;
    r->t_sent[i] = t;
    r->sent++;
    r->inflight++;
    send_msg(r, &m);
}

static void send_cancel(run *r, long i)
{
    char id[32];
    snprintf(id, sizeof id, "%ld", i);
    PB(InvocationCancel) c = PB_INIT(INVOCATION_CANCEL);
    c.invocation_id = id;
    msg_t m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = "";
    m.content_case = PB_CASE(INVOCATION_CANCEL);
    m.invocation_cancel = &c;
    send_msg(r, &m);
}

static void send_terminate(run *r, int grace_ms)
{
    PB(Duration) g = PB_INIT(DURATION);
    g.seconds = grace_ms / 1000;
    g.nanos = (grace_ms % 1000) * 1000000;
    PB(WorkerTerminate) t = PB_INIT(WORKER_TERMINATE);
    t.grace_period = &g;
    msg_t m = PB_INIT(STREAMING_MESSAGE);
    m.request_id = "";
    m.content_case = PB_CASE(WORKER_TERMINATE);
    m.worker_terminate = &t;
    send_msg(r, &m);
}

static void alloc_invocations(run *r, long n)
{
    r->target = n;
    r->t_sent = calloc((size_t)n + 1, sizeof *r->t_sent);
    r->seen = calloc((size_t)n + 1, 1);
    r->lat_us = calloc((size_t)n + 1, sizeof *r->lat_us);
    if (!r->t_sent || !r->seen || !r->lat_us)
        die("out of memory for %ld invocations", n);
}

static void on_invocation_response(run *r, const PB(InvocationResponse) * resp)
{
    double t = now_s();
    char *end;
    long i = strtol(resp->invocation_id, &end, 10);
    if (*end || i < 0 || i >= r->sent || !r->t_sent) {
        r->unknown++;
        return;
    }
    if (r->seen[i]++) {
        r->dup++;
        return;
    }
    r->done++;
    r->inflight--;
    r->t_last = t;
    int st = resp->result ? (int)resp->result->status : 0;
    if (st == ST_SUCCESS)
        r->ok++;
    else if (st == ST_CANCELLED)
        r->cancelled++;
    else {
        r->failed++;
        if (!r->first_failure[0])
            snprintf(r->first_failure, sizeof r->first_failure, "%s",
                     resp->result && resp->result->exception && resp->result->exception->message
                         ? resp->result->exception->message
                         : "(no message)");
        if (r->verbose && r->failed <= 3)
            fprintf(stderr, "azfunc-bench: invocation %ld failed: %s\n", i,
                    resp->result && resp->result->exception && resp->result->exception->message
                        ? resp->result->exception->message
                        : "(no message)");
    }
    if (i >= r->warmup)
        r->lat_us[r->nlat++] = (t - r->t_sent[i]) * 1e6;
    const PB(TypedData) *rv = resp->return_value;
    r->resp_body_len = -1;
    if (rv && rv->data_case == AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_HTTP && rv->http &&
        rv->http->body) {
        const PB(TypedData) *b = rv->http->body;
        if (b->data_case == AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_BYTES)
            r->resp_body_len = (long)b->bytes.len;
        else if (b->data_case == AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_STRING)
            r->resp_body_len = (long)strlen(b->string);
    }
    if (r->target >= 2 && r->done == r->target / 2)
        r->rss_mid_kb = proc_status_kb(r->pid, "VmRSS");
    if (r->done == r->target) { /* sampled now: the worker exits once the stream ends */
        r->rss_end_kb = proc_status_kb(r->pid, "VmRSS");
        r->rss_peak_kb = proc_status_kb(r->pid, "VmHWM");
        r->wcpu1 = proc_cpu_s(r->pid);
        r->scpu1 = self_cpu_s();
    }
    if (r->pump)
        r->pump(r);
}

static void start_run_phase(run *r);

/* The host's own indexing of a v1 app: one function per folder with a function.json. */
static void index_v1(run *r)
{
    DIR *dir = opendir(r->c->app);
    struct dirent *de;
    while (dir && (de = readdir(dir)) && r->nfn < MAX_FN) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s/function.json", r->c->app, de->d_name);
        FILE *f = de->d_name[0] != '.' ? fopen(path, "r") : NULL;
        if (!f)
            continue;
        char text[65536];
        size_t n = fread(text, 1, sizeof text - 1, f);
        fclose(f);
        text[n] = 0;
        cJSON *j = cJSON_Parse(text);
        const char *script = cJSON_GetStringValue(cJSON_GetObjectItem(j, "scriptFile"));
        fn *fnp = &r->fns[r->nfn++];
        char id[37];
        guid(id);
        fnp->name = strdup(de->d_name);
        fnp->id = strdup(id);
        fnp->raw_json = cJSON_PrintUnformatted(cJSON_GetObjectItem(j, "bindings"));
        if (asprintf(&fnp->v1_dir, "%s/%s", r->c->app, de->d_name) < 0 ||
            asprintf(&fnp->v1_script, "%s/%s/%s", r->c->app, de->d_name,
                     script ? script : "__init__.py") < 0)
            die("out of memory");
        cJSON_Delete(j);
    }
    if (dir)
        closedir(dir);
}

static void map_and_load(run *r)
{
    for (int j = 0; j < F_COUNT; j++) {
        r->fidx[j] = -1;
        for (int i = 0; i < r->nfn; i++)
            if (!strcmp(r->fns[i].name, fn_names[j]))
                r->fidx[j] = i;
    }
    if (r->stop_after_meta) {
        r->phase = PH_DONE;
        stop(r);
        return;
    }
    r->phase = PH_LOAD;
    r->loads_pending = r->nfn;
    for (int i = 0; i < r->nfn; i++)
        send_load(r, &r->fns[i]);
    if (r->nfn == 0)
        die("no function to load in %s", r->c->app);
}

static void on_meta(run *r, const PB(FunctionMetadataResponse) * resp)
{
    r->t_meta = now_s();
    r->meta_failed = !resp->result || resp->result->status != ST_SUCCESS;
    r->meta_default = resp->use_default_metadata_indexing;
    for (size_t i = 0; i < resp->n_function_metadata_results && r->nfn < MAX_FN; i++) {
        const PB(RpcFunctionMetadata) *md = resp->function_metadata_results[i];
        fn *f = &r->fns[r->nfn++];
        f->name = strdup(md->name);
        f->id = strdup(md->function_id && *md->function_id ? md->function_id : md->name);
        cJSON *arr = cJSON_CreateArray();
        for (size_t j = 0; j < md->n_raw_bindings; j++)
            cJSON_AddItemToArray(arr, cJSON_CreateString(md->raw_bindings[j]));
        f->raw_json = cJSON_PrintUnformatted(arr);
        cJSON_Delete(arr);
    }
    if (r->nfn == 0 && r->meta_default)
        index_v1(r); /* use_default_metadata_indexing: the host reads function.json */
    if (r->nfn == 0) {
        /* No indexing result: load the bench functions by name, as the host would
         * for worker-indexed functions on a second worker process. */
        for (int i = 0; i < F_COUNT; i++) {
            fn *f = &r->fns[r->nfn++];
            f->name = strdup(fn_names[i]);
            f->id = strdup(fn_names[i]);
            f->raw_json = strdup("[\"{\\\"name\\\":\\\"req\\\",\\\"type\\\":\\\"httpTrigger\\\","
                                 "\\\"direction\\\":\\\"IN\\\"}\",\"{\\\"name\\\":\\\"$return\\\","
                                 "\\\"type\\\":\\\"http\\\",\\\"direction\\\":\\\"OUT\\\"}\"]");
        }
    }
    map_and_load(r);
}

static int on_message(uint64_t stream, const uint8_t *data, size_t len, void *ud)
{
    run *r = ud;
    msg_t *m = azure_functions_rpc_messages__streaming_message__unpack(NULL, len, data);
    if (!m) {
        fprintf(stderr, "azfunc-bench: undecodable message from the worker (%zu bytes)\n", len);
        r->errors++;
        return 0;
    }
    switch (m->content_case) {
    case PB_CASE(START_STREAM):
        if (r->phase == PH_START) {
            r->stream = stream;
            r->t_start = now_s();
            r->phase = PH_INIT;
            if (!m->start_stream->worker_id || strcmp(m->start_stream->worker_id, r->wid))
                fprintf(stderr, "azfunc-bench: StartStream with worker id '%s', expected %s\n",
                        m->start_stream->worker_id ? m->start_stream->worker_id : "", r->wid);
            send_init(r);
        }
        break;
    case PB_CASE(WORKER_INIT_RESPONSE):
        r->t_init = now_s();
        if (!m->worker_init_response->result ||
            m->worker_init_response->result->status != ST_SUCCESS)
            fprintf(stderr, "azfunc-bench: WorkerInitResponse is not Success\n");
        r->phase = PH_META;
        if (r->c->no_indexing) { /* worker.config.json without workerIndexing */
            r->t_meta = r->t_init;
            index_v1(r);
            map_and_load(r);
        } else
            send_meta(r);
        break;
    case PB_CASE(FUNCTION_METADATA_RESPONSE):
        on_meta(r, m->function_metadata_response);
        break;
    case PB_CASE(FUNCTION_LOAD_RESPONSE):
        if (!m->function_load_response->result ||
            m->function_load_response->result->status != ST_SUCCESS)
            r->load_failed++;
        if (--r->loads_pending == 0) {
            r->t_loaded = now_s();
            start_run_phase(r);
        }
        break;
    case PB_CASE(INVOCATION_RESPONSE):
        on_invocation_response(r, m->invocation_response);
        break;
    case PB_CASE(RPC_LOG):
        if (r->verbose > 1)
            fprintf(stderr, "worker log: %s\n", m->rpc_log->message);
        break;
    default:
        break;
    }
    azure_functions_rpc_messages__streaming_message__free_unpacked(m, NULL);
    return 0;
}

static void on_stream_close(uint64_t stream, int status, const char *message, void *ud)
{
    run *r = ud;
    if (stream != r->stream && r->phase != PH_START)
        return;
    if (!r->stream_closed) {
        r->stream_closed = 1;
        r->t_closed = now_s();
        r->close_status = status;
        snprintf(r->close_msg, sizeof r->close_msg, "%s", message);
    }
    if (r->phase != PH_DONE)
        stop(r);
}

static void on_error(int code, const char *message, void *ud)
{
    run *r = ud;
    r->errors++;
    if (r->verbose)
        fprintf(stderr, "azfunc-bench: transport error %s: %s\n", azf_strerror(code), message);
}

/* Watchdog: deadline, child exit, delayed WorkerTerminate. */
static void *watchdog(void *arg)
{
    run *r = arg;
    double deadline = now_s() + r->c->timeout_s;
    while (!r->stopped) {
        double t = now_s();
        if (!r->child_exited) {
            int st;
            if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
                r->child_exited = 1;
                r->child_status = st;
                r->t_exit = t;
            }
        } else if (t - r->t_exit > 0.5) {
            stop(r); /* the connection is gone; give the loop time to read what is left */
        }
        if (r->terminate_at > 0 && t >= r->terminate_at) {
            r->terminate_at = 0;
            r->t_terminate = t;
            send_terminate(r, r->terminate_grace_ms);
        }
        if (t > deadline) {
            r->timed_out = 1;
            stop(r);
        }
        usleep(2000);
    }
    return NULL;
}

static void spawn(run *r)
{
    const cfg *c = r->c;
    int port = azf_driver_port(r->d);
    guid(r->wid);
    guid(r->rid);
    char sport[16], uri[64], maxlen[24];
    snprintf(sport, sizeof sport, "%d", port);
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/", port);
    snprintf(maxlen, sizeof maxlen, "%ld", c->max_msg ? c->max_msg : 2147483647L);
    const char *host_args[] = {"--host",
                               "127.0.0.1",
                               "--port",
                               sport,
                               "--workerId",
                               r->wid,
                               "--requestId",
                               r->rid,
                               "--grpcMaxMessageLength",
                               maxlen,
                               "--functions-uri",
                               uri,
                               "--functions-worker-id",
                               r->wid,
                               "--functions-request-id",
                               r->rid,
                               "--functions-grpc-max-message-length",
                               maxlen};
    enum { NH = sizeof host_args / sizeof host_args[0] };
    int nh = c->legacy_args ? 10 : NH;
    char **argv = calloc((size_t)c->wargc + NH + 1, sizeof *argv);
    if (!argv)
        die("out of memory");
    for (int i = 0; i < c->wargc; i++)
        argv[i] = c->wcmd[i];
    for (int i = 0; i < nh; i++)
        argv[c->wargc + i] = (char *)host_args[i];
    r->t_spawn = now_s();
    pid_t pid = fork();
    if (pid < 0)
        die("fork: %s", strerror(errno));
    if (pid == 0) {
        char wdir[PATH_MAX];
        snprintf(wdir, sizeof wdir, "%s", c->wcmd[0]);
        char *slash = strrchr(wdir, '/');
        if (slash)
            *slash = 0;
        else
            snprintf(wdir, sizeof wdir, "%s", c->app);
        if (chdir(c->app) < 0)
            _exit(126);
        setenv("FUNCTIONS_WORKER_DIRECTORY", wdir, 1);
        setenv("FUNCTIONS_APPLICATION_DIRECTORY", c->app, 1);
        setenv("AzureWebJobsScriptRoot", c->app, 1);
        setenv("FUNCTIONS_WORKER_RUNTIME", "python", 1);
        setenv("FUNCTIONS_WORKER_RUNTIME_VERSION", "3.11", 0);
        setenv("PYTHON_THREADPOOL_THREAD_COUNT", "1000", 0);
        int fd =
            open(c->worker_log ? c->worker_log : "/dev/null", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        if (c->worker_cpu >= 0) {
            cpu_set_t set;
            CPU_ZERO(&set);
            CPU_SET(c->worker_cpu, &set);
            sched_setaffinity(0, sizeof set, &set);
        }
        execvp(argv[0], argv);
        _exit(127);
    }
    free(argv);
    r->pid = pid;
}

static int run_worker(run *r, const cfg *c)
{
    r->c = c;
    for (int j = 0; j < F_COUNT; j++)
        r->fidx[j] = -1;
    azf_transport_callbacks *cbs;
    if (azf_transport_callbacks_new(&cbs))
        die("out of memory");
    azf_transport_callbacks_set_on_message(cbs, on_message);
    azf_transport_callbacks_set_on_stream_close(cbs, on_stream_close);
    azf_transport_callbacks_set_on_error(cbs, on_error);
    int rc = azf_driver_new(&r->d, AZF_ROLE_SERVER, NULL, cbs, r);
    azf_transport_callbacks_free(cbs);
    if (rc)
        die("azf_driver_new: %s", azf_strerror(rc));
    if ((rc = azf_driver_listen(r->d, "127.0.0.1", 0)))
        die("azf_driver_listen: %s", azf_strerror(rc));
    spawn(r);
    pthread_t wd;
    pthread_create(&wd, NULL, watchdog, r);
    rc = azf_driver_run(r->d);
    r->stopped = 1;
    pthread_join(wd, NULL);
    return rc;
}

/* Ends the worker as the host does when the stream is over: close the stream,
 * then wait for the exit (bounded), then kill. Returns seconds to exit or -1. */
static double end_worker(run *r, double bound_s)
{
    double t0 = now_s();
    if (r->d) {
        azf_driver_free(r->d); /* closes the connection: the worker sees end of stream */
        r->d = NULL;
    }
    while (!r->child_exited) {
        int st;
        if (waitpid(r->pid, &st, WNOHANG) == r->pid) {
            r->child_exited = 1;
            r->child_status = st;
            r->t_exit = now_s();
            break;
        }
        if (now_s() - t0 > bound_s) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, &r->child_status, 0);
            r->child_exited = 1;
            return -1;
        }
        usleep(1000);
    }
    return r->t_exit > t0 ? r->t_exit - t0 : 0;
}

static void free_run(run *r)
{
    for (int i = 0; i < r->nfn; i++) {
        free(r->fns[i].name);
        free(r->fns[i].id);
        cJSON_free(r->fns[i].raw_json);
        free(r->fns[i].v1_dir);
        free(r->fns[i].v1_script);
    }
    free(r->t_sent);
    free(r->seen);
    free(r->lat_us);
}

/* ---- scenarios ------------------------------------------------------------ */

static uint8_t *g_body;
static int g_soak_cancel;

static void pump_hello(run *r)
{
    while (r->inflight < r->k && r->sent < r->target)
        send_inv(r, F_HELLO, r->sent, NULL, 0);
    if (r->done == r->target)
        finish(r);
}

/* payload: one echo per size, one at a time; the worker's peak RSS is reset
 * before each (clear_refs) and read after its response. */
static const long payload_mb[3] = {1, 10, 100};
static double payload_ms[3], payload_peak_extra_mb[3];
static long payload_base_kb[3], payload_len_ok[3];

static void pump_payload(run *r)
{
    if (r->done > 0) {
        long i = r->done - 1;
        payload_ms[i] = (r->t_last - r->t_sent[i]) * 1e3;
        payload_peak_extra_mb[i] = (proc_status_kb(r->pid, "VmHWM") - payload_base_kb[i]) / 1024.0;
        payload_len_ok[i] = r->resp_body_len == payload_mb[i] << 20;
    }
    if (r->sent == r->done && r->sent < r->target) {
        long i = r->sent;
        proc_reset_hwm(r->pid);
        payload_base_kb[i] = proc_status_kb(r->pid, "VmRSS");
        send_inv(r, F_ECHO, i, g_body, (size_t)payload_mb[i] << 20);
    }
    if (r->done == r->target)
        finish(r);
}

static void pump_async(run *r)
{
    while (r->sent < r->target)
        send_inv(r, F_SLEEP, r->sent, NULL, 0);
    if (r->done == r->target)
        finish(r);
}

/* soak: a mix of sync, async, raising, logging-from-threads and cancelled. */
static void pump_soak(run *r)
{
    static const int mix[10] = {F_HELLO,   F_HELLO, F_HELLO,      F_HELLO, F_ASLEEP0,
                                F_ASLEEP0, F_BOOM,  F_LOGTHREADS, F_SLOW,  F_HELLO};
    while (r->inflight < r->k && r->sent < r->target) {
        long i = r->sent;
        int f = mix[i % 10];
        send_inv(r, f, i, NULL, 0);
        if (f == F_SLOW && g_soak_cancel)
            send_cancel(r, i);
    }
    if (r->done == r->target)
        finish(r);
}

static void pump_fault(run *r) /* fault scenarios drive themselves */
{
    (void)r;
}

static const char *g_fault;

static void start_run_phase(run *r)
{
    r->phase = PH_RUN;
    r->rss_idle_kb = proc_status_kb(r->pid, "VmRSS");
    r->wcpu0 = proc_cpu_s(r->pid);
    r->scpu0 = self_cpu_s();
    if (r->pump == pump_fault) {
        if (!strcmp(g_fault, "fault-vanish")) {
            send_inv(r, F_SLEEP, 0, NULL, 0);
            stop(r);
        } else if (!strcmp(g_fault, "fault-kill")) {
            send_inv(r, F_SLEEP, 0, NULL, 0);
            r->t_kill = now_s();
            kill(r->pid, SIGKILL); /* on_stream_close must report it */
        } else if (!strcmp(g_fault, "fault-garbage")) {
            static const uint8_t junk[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x99, 0x01};
            azf_buf b = AZF_BUF_INIT;
            azf_buf_append(&b, junk, sizeof junk);
            azf_driver_send(r->d, r->stream, &b);
            azf_buf_dispose(&b);
            r->pump = pump_hello; /* then the worker must still answer */
            r->k = 1;
            pump_hello(r);
        } else if (!strcmp(g_fault, "fault-oversize")) {
            azf_buf b = AZF_BUF_INIT;
            size_t n = (size_t)r->c->max_msg + 1;
            if (azf_buf_grow(&b, n))
                die("out of memory");
            memset(b.ptr, 0x0a, n);
            b.size = n;
            azf_driver_send(r->d, r->stream, &b);
            azf_buf_dispose(&b);
        } else if (!strcmp(g_fault, "fault-terminate")) {
            send_inv(r, F_BLOCK, 0, NULL, 0);
            r->terminate_at = now_s() + 0.3;
        }
        return;
    }
    r->pump(r);
}

/* ---- statistics and output ------------------------------------------------ */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, long n, double p)
{
    if (n <= 0)
        return 0;
    long i = (long)(p * (double)(n - 1) + 0.5);
    return v[i];
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n ? (n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2) : 0;
}

static FILE *g_json;
static int g_json_first = 1;

static void jnum(const char *key, double v)
{
    printf("  %-34s %14.3f\n", key, v);
    if (g_json)
        fprintf(g_json, "%s\n  \"%s\": %.6g", g_json_first ? "" : ",", key, v), g_json_first = 0;
}

static void jstr(const char *key, const char *v)
{
    printf("  %-34s %14s\n", key, v);
    if (g_json)
        fprintf(g_json, "%s\n  \"%s\": \"%s\"", g_json_first ? "" : ",", key, v), g_json_first = 0;
}

static void report_counts(run *r)
{
    jnum("invocations_sent", (double)r->sent);
    jnum("responses_success", (double)r->ok);
    jnum("responses_failure", (double)r->failed);
    jnum("responses_cancelled", (double)r->cancelled);
    jnum("responses_duplicate", (double)r->dup);
    jnum("responses_unknown_id", (double)r->unknown);
    jnum("responses_missing", (double)(r->sent - r->done));
    jnum("load_failures", (double)r->load_failed);
}

/* CPU time of both sides over the scenario: the bench must not be the bottleneck. */
static void report_cpu(run *r, double wall)
{
    double s1 = r->scpu1 ? r->scpu1 : self_cpu_s(), w1 = r->wcpu1 ? r->wcpu1 : proc_cpu_s(r->pid);
    jnum("wall_s", wall);
    jnum("bench_cpu_s", s1 - r->scpu0);
    if (w1 >= 0 && r->wcpu0 >= 0)
        jnum("worker_cpu_s", w1 - r->wcpu0);
}

static int startup_ok(run *r)
{
    if (r->phase == PH_RUN || r->phase == PH_DONE)
        return 1;
    static const char *names[] = {"StartStream", "WorkerInitResponse", "FunctionMetadataResponse",
                                  "FunctionLoadResponse"};
    fprintf(stderr, "azfunc-bench: the worker did not get past %s (%s%s%s)\n", names[r->phase],
            r->timed_out ? "timeout" : "", r->child_exited ? "worker exited" : "",
            r->stream_closed ? ", stream closed" : "");
    return 0;
}

static void usage(void)
{
    fputs("usage: azfunc-bench [options] SCENARIO -- WORKER_CMD [ARGS...]\n"
          "scenarios: throughput latency coldstart rss payload async soak\n"
          "           fault-vanish fault-kill fault-garbage fault-oversize fault-terminate\n"
          "options: --app DIR (default: bench/apps/benchapp next to the source)\n"
          "         -n N (invocations)  -k K (in flight)  -r R (coldstart repetitions)\n"
          "         --json FILE  --worker-log FILE  --worker-cpu CPU  --timeout S\n"
          "         --max-message-length N  --cancel (soak: send InvocationCancel)\n"
          "         --no-worker-indexing (v1 app: the bench indexes function.json)\n"
          "         --legacy-args (omit the --functions-* family, for old workers)\n"
          "         --grace-slack S (fault-terminate: allow S s over the grace period)\n"
          "         --max-rss-growth PCT (soak: fail when RSS grows more over the 2nd half)\n"
          "         --check (exit 1 when a correctness check fails)  -v\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    cfg c = {.n = 0, .k = 0, .reps = 10, .worker_cpu = -1, .timeout_s = 300};
    const char *app = AZF_BENCH_APP;
    int verbose = 0, i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--"))
            break;
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--app") && v)
            app = v, i++;
        else if (!strcmp(a, "-n") && v)
            c.n = atol(v), i++;
        else if (!strcmp(a, "-k") && v)
            c.k = atoi(v), i++;
        else if (!strcmp(a, "-r") && v)
            c.reps = atoi(v), i++;
        else if (!strcmp(a, "--json") && v)
            c.json_path = v, i++;
        else if (!strcmp(a, "--worker-log") && v)
            c.worker_log = v, i++;
        else if (!strcmp(a, "--worker-cpu") && v)
            c.worker_cpu = atoi(v), i++;
        else if (!strcmp(a, "--timeout") && v)
            c.timeout_s = atof(v), i++;
        else if (!strcmp(a, "--max-message-length") && v)
            c.max_msg = atol(v), i++;
        else if (!strcmp(a, "--cancel"))
            g_soak_cancel = 1;
        else if (!strcmp(a, "--no-worker-indexing"))
            c.no_indexing = 1;
        else if (!strcmp(a, "--legacy-args"))
            c.legacy_args = 1;
        else if (!strcmp(a, "--grace-slack") && v)
            c.grace_slack = atof(v), i++;
        else if (!strcmp(a, "--max-rss-growth") && v)
            c.max_rss_growth = atof(v), i++;
        else if (!strcmp(a, "--check"))
            c.check = 1;
        else if (!strcmp(a, "-v"))
            verbose++;
        else if (a[0] != '-' && !c.scenario)
            c.scenario = a;
        else
            usage();
    }
    if (!c.scenario || i + 1 >= argc)
        usage();
    c.wcmd = &argv[i + 1];
    c.wargc = argc - i - 1;
    /* The worker starts in the app folder: make relative paths in its command
     * absolute (without resolving symlinks: a venv's python must stay itself). */
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd))
        die("getcwd: %s", strerror(errno));
    for (int j = 0; j < c.wargc; j++)
        if (c.wcmd[j][0] != '/' && strchr(c.wcmd[j], '/') && access(c.wcmd[j], F_OK) == 0) {
            char *abs;
            if (asprintf(&abs, "%s/%s", cwd, c.wcmd[j]) < 0)
                die("out of memory");
            c.wcmd[j] = abs; /* lives until exit */
        }
    if (!realpath(app, c.app))
        die("app folder %s: %s", app, strerror(errno));
    signal(SIGPIPE, SIG_IGN);
    azf_global_init();
    if (c.json_path && !(g_json = fopen(c.json_path, "w")))
        die("%s: %s", c.json_path, strerror(errno));
    if (g_json)
        fprintf(g_json, "{");
    printf("azfunc-bench %s: %s\n", c.scenario, c.wcmd[0]);
    jstr("scenario", c.scenario);
    jstr("worker", c.wcmd[c.wargc > 1 && strstr(c.wcmd[0], "python") ? c.wargc - 1 : 0]);
    const char *sc = c.scenario;
    int fail = 0;
    int rss_fail = 0;
    const char *skip = NULL; /* the scenario could not exercise what it is for */

    if (!strcmp(sc, "coldstart")) {
        int R = c.reps > 0 ? c.reps : 10;
        double *ts = calloc((size_t)R, sizeof *ts), *ti = calloc((size_t)R, sizeof *ti),
               *tm = calloc((size_t)R, sizeof *tm);
        int okr = 0;
        for (int rep = 0; rep < R; rep++) {
            run r = {0};
            r.stop_after_meta = 1;
            r.verbose = verbose;
            run_worker(&r, &c);
            if (r.phase == PH_DONE) {
                ts[okr] = (r.t_start - r.t_spawn) * 1e3;
                ti[okr] = (r.t_init - r.t_spawn) * 1e3;
                tm[okr] = (r.t_meta - r.t_spawn) * 1e3;
                okr++;
            } else
                startup_ok(&r);
            end_worker(&r, 5);
            free_run(&r);
        }
        jnum("repetitions_ok", okr);
        jnum("start_stream_ms_median", median(ts, okr));
        jnum("init_response_ms_median", median(ti, okr));
        jnum("metadata_response_ms_median", median(tm, okr));
        jnum("metadata_response_ms_max", okr ? tm[okr - 1] : 0);
        fail = okr != R;
        free(ts), free(ti), free(tm);
    } else {
        run r = {0};
        r.verbose = verbose;
        long n = c.n;
        r.k = c.k;
        if (!strcmp(sc, "throughput")) {
            n = n ? n : 100000, r.k = r.k ? r.k : 64, r.pump = pump_hello;
            r.warmup = n / 10;
        } else if (!strcmp(sc, "latency")) {
            n = n ? n : 20000, r.k = 1, r.pump = pump_hello;
            r.warmup = n / 10;
        } else if (!strcmp(sc, "rss")) {
            n = n ? n : 20000, r.k = r.k ? r.k : 64, r.pump = pump_hello;
        } else if (!strcmp(sc, "payload")) {
            n = 3, r.k = 1, r.pump = pump_payload;
            if (!(g_body = malloc((size_t)payload_mb[2] << 20)))
                die("out of memory");
            memset(g_body, 'x', (size_t)payload_mb[2] << 20);
        } else if (!strcmp(sc, "async")) {
            n = n ? n : 100, r.k = (int)n, r.pump = pump_async;
        } else if (!strcmp(sc, "soak")) {
            n = n ? n : 1000000, r.k = r.k ? r.k : 64, r.pump = pump_soak;
        } else if (!strncmp(sc, "fault-", 6)) {
            n = 1, r.k = 1, r.pump = pump_fault, g_fault = sc;
            if (!strcmp(sc, "fault-oversize") && !c.max_msg)
                c.max_msg = 1 << 20;
            if (!strcmp(sc, "fault-terminate"))
                r.terminate_grace_ms = 2000;
            if (c.timeout_s > 30)
                c.timeout_s = 30;
        } else
            usage();
        alloc_invocations(&r, n);
        run_worker(&r, &c);
        if (!startup_ok(&r)) {
            fail = 1;
            end_worker(&r, 5);
        } else if (!strncmp(sc, "fault-", 6)) {
            fail = 0;
            if (!strcmp(sc, "fault-vanish")) {
                /* The host disappears with an invocation running: the worker must
                 * exit by itself, cleanly, within a bound. */
                double t = end_worker(&r, 10);
                jnum("worker_exit_s", t);
                jnum("worker_exit_status", WIFEXITED(r.child_status) ? WEXITSTATUS(r.child_status)
                                                                     : -WTERMSIG(r.child_status));
                fail = t < 0 || !WIFEXITED(r.child_status);
            } else if (!strcmp(sc, "fault-kill")) {
                /* The worker was killed: the driver must report the lost stream. */
                jnum("stream_close_reported", r.stream_closed);
                jnum("stream_close_grpc_status", r.close_status);
                jnum("report_after_kill_s", r.stream_closed ? r.t_closed - r.t_kill : -1);
                fail = !r.stream_closed;
                end_worker(&r, 5);
            } else {
                /* garbage / oversize / terminate: the worker must not crash; for
                 * terminate it must be gone within the grace period. */
                double t = end_worker(&r, 10);
                int sig = WIFSIGNALED(r.child_status) ? WTERMSIG(r.child_status) : 0;
                jnum("worker_exit_signal", sig);
                jnum("worker_exit_status",
                     WIFEXITED(r.child_status) ? WEXITSTATUS(r.child_status) : -1);
                jnum("stream_closed_by_worker", r.stream_closed);
                jnum("stream_close_grpc_status", r.close_status);
                report_counts(&r);
                fail = sig != 0 || t < 0 || r.dup || r.unknown;
                if (!strcmp(sc, "fault-garbage"))
                    fail |= !(r.done == 1 || r.stream_closed);
                if (!strcmp(sc, "fault-terminate")) {
                    double exit_after =
                        r.child_exited && r.t_exit > 0 ? r.t_exit - r.t_terminate : -1;
                    jnum("exit_after_terminate_s", exit_after);
                    fail |= exit_after < 0 ||
                            exit_after > r.terminate_grace_ms / 1000.0 + c.grace_slack;
                    fail |= r.done != 1; /* the blocked invocation is answered exactly once */
                    if (!fail && r.t_last > 0 && r.t_last < r.t_terminate)
                        skip = "the 'block' function did not run (it was answered before "
                               "WorkerTerminate was sent)";
                }
            }
        } else {
            double wall = r.t_last - r.t_first;
            report_counts(&r);
            report_cpu(&r, wall);
            if (!strcmp(sc, "throughput"))
                jnum("invocations_per_s", wall > 0 ? (double)r.done / wall : 0);
            if (!strcmp(sc, "latency") || !strcmp(sc, "throughput")) {
                qsort(r.lat_us, (size_t)r.nlat, sizeof *r.lat_us, cmp_d);
                jnum("latency_us_p50", pct(r.lat_us, r.nlat, 0.50));
                jnum("latency_us_p90", pct(r.lat_us, r.nlat, 0.90));
                jnum("latency_us_p99", pct(r.lat_us, r.nlat, 0.99));
                jnum("latency_us_max", r.nlat ? r.lat_us[r.nlat - 1] : 0);
            }
            if (!strcmp(sc, "rss")) {
                jnum("idle_rss_mb", r.rss_idle_kb / 1024.0);
                jnum("peak_rss_mb", r.rss_peak_kb / 1024.0);
            }
            if (!strcmp(sc, "payload")) {
                static const char *k[3][3] = {
                    {"payload_1mb_ms", "payload_1mb_peak_extra_rss_mb", "payload_1mb_echo_ok"},
                    {"payload_10mb_ms", "payload_10mb_peak_extra_rss_mb", "payload_10mb_echo_ok"},
                    {"payload_100mb_ms", "payload_100mb_peak_extra_rss_mb",
                     "payload_100mb_echo_ok"}};
                jnum("idle_rss_mb", r.rss_idle_kb / 1024.0);
                for (int j = 0; j < 3 && j < r.done; j++) {
                    jnum(k[j][0], payload_ms[j]);
                    jnum(k[j][1], payload_peak_extra_mb[j]);
                    jnum(k[j][2], (double)payload_len_ok[j]);
                }
                free(g_body);
            }
            if (!strcmp(sc, "async"))
                jnum("async_wall_ms", wall * 1e3);
            if (!strcmp(sc, "soak")) {
                long end_kb = r.rss_end_kb;
                double growth = r.rss_mid_kb > 0
                                    ? (double)(end_kb - r.rss_mid_kb) / (double)r.rss_mid_kb * 100
                                    : 0;
                jnum("rss_mid_mb", r.rss_mid_kb / 1024.0);
                jnum("rss_end_mb", end_kb / 1024.0);
                jnum("rss_growth_second_half_pct", growth);
                rss_fail = c.max_rss_growth > 0 && growth > c.max_rss_growth;
            }
            fail = r.dup || r.unknown || r.done != r.sent || r.sent != r.target || r.timed_out;
            fail |= rss_fail;
            if (!fail && !strcmp(sc, "soak") && r.ok == 0)
                skip = "no function ran: every invocation failed";
            double t = end_worker(&r, 3); /* then killed, as the host does */
            jnum("worker_exit_after_close_s", t);
        }
        jnum("transport_errors", r.errors);
        if (skip)
            printf("SKIP: %s%s%s\n", skip, r.first_failure[0] ? "; first failure: " : "",
                   r.first_failure);
        free_run(&r);
    }
    jnum("check_failed", fail);
    if (g_json) {
        fprintf(g_json, "\n}\n");
        fclose(g_json);
    }
    azf_global_shutdown();
    /* 77: ctest's skip code (SKIP_RETURN_CODE), used only with --check. */
    return c.check && fail ? 1 : c.check && skip ? 77 : 0;
}
