/* azfunc-worker: the executable the Functions host starts (host-protocol §2.1). */
#include "azfunc/python.h"
#include "azfunc/worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

static const char usage[] =
    "usage: azfunc-worker --functions-uri URI --functions-worker-id ID --functions-request-id ID\n"
    "                     [--functions-grpc-max-message-length N] [options]\n"
    "   or: azfunc-worker --host HOST --port PORT --workerId ID --requestId ID\n"
    "                     [--grpcMaxMessageLength N] [options]\n"
    "\n"
    "The libazfunc language worker for the Azure Functions host. The host starts it\n"
    "with both families of flags; --functions-* values win. Unknown flags are ignored.\n"
    "\n"
    "options:\n"
    "  --tls-ca-file FILE      trust anchors for an https:// host (env AZF_TLS_CA_FILE)\n"
    "  --tls-ca-dir DIR        directory of trust anchors (env AZF_TLS_CA_DIR)\n"
    "  --tls-cert FILE         client certificate for mutual TLS (env AZF_TLS_CERT)\n"
    "  --tls-key FILE          its private key (env AZF_TLS_KEY)\n"
    "  --tls-server-name NAME  SNI and expected certificate name (env AZF_TLS_SERVER_NAME)\n"
    "  --tls-insecure          do not verify the host's certificate (env AZF_TLS_INSECURE=1)\n"
    "  --connect-timeout-ms MS bound on reaching the host (default 5000)\n"
    "  --help                  this text\n"
    "  --version               the version\n"
    "\n"
    "Exit status: 0 after WorkerTerminate or a normal end of the stream, 1 when the\n"
    "host cannot be reached or the conversation fails, 2 for bad arguments.\n";

static void log_to_stderr(int level, const char *message, void *ud)
{
    (void)ud;
    if (level >= AZF_LOG_WARNING)
        fprintf(stderr, "azfunc-worker: %s\n", message);
}

#if defined(__SANITIZE_ADDRESS__)
#define AZF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define AZF_ASAN 1
#endif
#endif
#ifdef AZF_ASAN
/* Sanitizer builds: CPython keeps process-lifetime allocations that finalisation does
 * not free; they are not libazfunc's (the same suppression as tests/python/lsan.supp). */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void)
{
    return "leak:libpython3\n";
}
#endif

/* ---- the app provider: the Python adapter ---------------------------------- */

typedef struct app {
    azf_python *py;
    pthread_mutex_t lock; /* guards w for the System log callback */
    azf_worker *w;
} app;

/* A Python failure as the official worker reports it; else the adapter's message. */
static int python_error(app *a, int rc, azf_buf *message, azf_buf *stack)
{
    const azf_python_error *e = azf_python_last_error(a->py);
    const char *m = e ? azf_python_error_message(e) : azf_python_errmsg(a->py);
    const char *s = e ? azf_python_error_stack_trace(e) : "";
    if (m && *m)
        azf_buf_set(message, m, strlen(m));
    if (s && *s)
        azf_buf_set(stack, s, strlen(s));
    return rc < 0 ? rc : AZF_E_PYTHON;
}

static int app_index(const char *app_dir, azf_registry *reg, azf_buf *message, azf_buf *stack,
                     void *ud)
{
    app *a = ud;
    azf_python_index *idx;
    int rc = azf_python_index_app(a->py, app_dir, &idx);
    if (rc)
        return python_error(a, rc, message, stack);
    rc = azf_python_index_use_default(idx) ? 0 : azf_python_register(a->py, reg, idx);
    azf_python_index_free(idx);
    return rc < 0 ? python_error(a, rc, message, stack) : rc;
}

static int app_load(const char *function_id, const char *metadata_json, const azf_function *fn,
                    azf_buf *message, azf_buf *stack, void *ud)
{
    (void)fn;
    app *a = ud;
    int rc = azf_python_load(a->py, function_id, metadata_json);
    return rc ? python_error(a, rc, message, stack) : 0;
}

static int app_reload(const azf_value_map *env, const char *app_dir, azf_buf *message,
                      azf_buf *stack, void *ud)
{
    app *a = ud;
    int rc = azf_python_reload_environment(a->py, env, *app_dir ? app_dir : NULL);
    return rc ? python_error(a, rc, message, stack) : 0;
}

static int app_init(const char *app_dir, const char *http_host, azf_value_map *caps,
                    azf_buf *message, azf_buf *stack, void *ud)
{
    app *a = ud;
    int rc = azf_python_init_app(a->py, app_dir, http_host, caps);
    return rc ? python_error(a, rc, message, stack) : 0;
}

static int app_drain(int timeout_ms, void *ud)
{
    app *a = ud;
    return azf_python_drain(a->py, timeout_ms);
}

/* The adapter's System logs: to the host once the worker exists, else stderr. */
static void app_log(int level, const char *category, const char *message, void *ud)
{
    app *a = ud;
    pthread_mutex_lock(&a->lock);
    if (a->w)
        azf_worker_log(a->w, level, category, message);
    else if (level >= AZF_LOG_WARNING)
        fprintf(stderr, "azfunc-worker: %s: %s\n", category, message);
    pthread_mutex_unlock(&a->lock);
}

/* Starts the interpreter before the host is contacted: WorkerInitResponse then
 * reports the Python that really runs. */
static int app_start(app *a, azf_worker_opts *opts, azf_worker_provider *p)
{
    azf_python_opts *po;
    int rc = azf_python_opts_new(&po);
    if (!rc)
        rc = azf_python_opts_set_log_callback(po, app_log, a);
    if (!rc)
        rc = azf_python_new(&a->py, po);
    azf_python_opts_free(po);
    if (!rc && (rc = azf_python_start(a->py))) {
        fprintf(stderr, "azfunc-worker: cannot start Python: %s\n", azf_python_errmsg(a->py));
        return rc;
    }
    if (rc) {
        fprintf(stderr, "azfunc-worker: cannot start Python: %s\n", azf_strerror(rc));
        return rc;
    }
    /* "3.11.4 (main, ...)" -> "3.11" */
    char version[16] = "";
    const char *v = azf_python_version(a->py);
    int major = 0, minor = 0;
    if (v && sscanf(v, "%d.%d", &major, &minor) == 2)
        snprintf(version, sizeof version, "%d.%d", major, minor);
    if ((rc = azf_worker_opts_set_runtime(opts, "python", version[0] ? version : NULL)) ||
        (rc = azf_worker_provider_set_index(p, app_index)) ||
        (rc = azf_worker_provider_set_load(p, app_load)) ||
        (rc = azf_worker_provider_set_reload(p, app_reload)) ||
        (rc = azf_worker_provider_set_drain(p, app_drain)) ||
        (rc = azf_worker_provider_set_init(p, app_init)) ||
        (rc = azf_worker_provider_set_v1_handler(p, azf_python_handler(a->py), a->py)) ||
        (rc = azf_worker_opts_set_provider(opts, p, a)))
        fprintf(stderr, "azfunc-worker: cannot set up the worker: %s\n", azf_strerror(rc));
    return rc;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        }
        if (strcmp(argv[i], "--version") == 0) {
            printf("azfunc-worker %s\n", azf_version());
            return 0;
        }
    }
    /* Socket writes must not kill the process when the host goes away. Blocked rather
     * than ignored: every thread (the I/O thread, the app thread, Python's) inherits
     * the mask, while the process-level disposition stays the default that user code
     * expects from an embedded interpreter (signals are left to the host). */
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_set, NULL);
    azf_global_init();
    azf_set_log_callback(log_to_stderr, NULL);
    azf_worker_opts *opts;
    if (azf_worker_opts_new(&opts)) {
        fprintf(stderr, "azfunc-worker: out of memory\n");
        return 1;
    }
    int rc = azf_worker_opts_from_args(opts, argc, (const char *const *)argv);
    if (rc) {
        fprintf(stderr, "azfunc-worker: %s\n(try --help)\n", azf_worker_opts_errmsg(opts));
        azf_worker_opts_free(opts);
        return 2;
    }
    app a = {NULL, PTHREAD_MUTEX_INITIALIZER, NULL};
    azf_worker_provider *p = NULL;
    azf_worker *w = NULL;
    int started = 0; /* app_start reports its own errors */
    if ((rc = azf_worker_provider_new(&p)) || (rc = app_start(&a, opts, p)) ||
        (started = 1, rc = azf_worker_new(&w, opts))) {
        if (started || !p)
            fprintf(stderr, "azfunc-worker: cannot start: %s\n", azf_strerror(rc));
        azf_worker_provider_free(p);
        azf_worker_opts_free(opts);
        azf_python_free(a.py);
        azf_global_shutdown();
        return 1;
    }
    azf_worker_provider_free(p);
    azf_worker_opts_free(opts);
    pthread_mutex_lock(&a.lock);
    a.w = w;
    pthread_mutex_unlock(&a.lock);
    rc = azf_worker_run(w); /* drains the Python invocations before it returns */
    if (rc)
        fprintf(stderr, "azfunc-worker: error: %s\n", azf_worker_errmsg(w));
    else
        fprintf(stderr, "azfunc-worker: %s\n", azf_worker_errmsg(w));
    pthread_mutex_lock(&a.lock);
    a.w = NULL;
    pthread_mutex_unlock(&a.lock);
    azf_worker_free(w);
    azf_python_free(a.py);
    azf_global_shutdown();
    return rc ? 1 : 0;
}
