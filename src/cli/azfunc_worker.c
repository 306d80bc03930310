/* azfunc-worker: the executable the Functions host starts (host-protocol §2.1). */
#include "azfunc/python.h"
#include "azfunc/worker.h"

#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
    "  --python X.Y|PATH       the Python to run: a version (3.12) or an interpreter\n"
    "  --venv DIR              the app's virtual environment\n"
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
    "Which Python runs, first match wins: --python; the venv (--venv, VIRTUAL_ENV,\n"
    "else .venv/ or venv/ in the app root); FUNCTIONS_WORKER_RUNTIME_VERSION; python3\n"
    "on PATH; the build's Python. The app root is AzureWebJobsScriptRoot, else the\n"
    "working directory (the host starts the worker there).\n"
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

/* --python X.Y|PATH and --venv DIR (the worker's own flags; the worker options
 * parser skips them as unknown). 0, or 2 for a flag without its value. */
static int python_args(int argc, char **argv, const char **python, const char **venv)
{
    for (int i = 1; i < argc; i++) {
        const char **slot = strcmp(argv[i], "--python") == 0 ? python
                            : strcmp(argv[i], "--venv") == 0 ? venv
                                                             : NULL;
        if (!slot)
            continue;
        if (i + 1 >= argc || !*argv[i + 1] || strncmp(argv[i + 1], "--", 2) == 0) {
            fprintf(stderr, "azfunc-worker: %s needs a value\n(try --help)\n", argv[i]);
            return 2;
        }
        *slot = argv[++i];
    }
    return 0;
}

/* The options that pick the Python (azfunc-worker --help). */
static int python_opts(azf_python_opts *po, const char *python, const char *venv)
{
    const char *root = getenv("AzureWebJobsScriptRoot");
    char cwd[4096];
    if (!root || !*root)
        root = getcwd(cwd, sizeof cwd);
    int rc = root ? azf_python_opts_set_app_dir(po, root) : 0;
    if (!rc && python && strchr(python, '/'))
        rc = azf_python_opts_set_interpreter(po, python);
    else if (!rc && python)
        rc = azf_python_opts_set_version(po, python);
    if (!rc && venv)
        rc = azf_python_opts_set_venv(po, venv);
    return rc;
}

/* Starts the interpreter before the host is contacted: WorkerInitResponse then
 * reports the Python that really runs. When it cannot start, the reason goes to
 * stderr and, as a failed WorkerInitResponse, to the host (returns 1: go on). */
static int app_start(app *a, azf_worker_opts *opts, azf_worker_provider *p, const char *python,
                     const char *venv)
{
    azf_python_opts *po;
    int rc = azf_python_opts_new(&po);
    if (!rc)
        rc = azf_python_opts_set_log_callback(po, app_log, a);
    if (!rc && (rc = python_opts(po, python, venv)) == AZF_E_INVALID)
        fprintf(stderr, "azfunc-worker: invalid --python or --venv value\n");
    if (!rc)
        rc = azf_python_new(&a->py, po);
    azf_python_opts_free(po);
    if (!rc && (rc = azf_python_start(a->py))) {
        char *text = malloc(strlen(azf_python_errmsg(a->py)) + 32);
        if (text)
            sprintf(text, "cannot start Python: %s", azf_python_errmsg(a->py));
        fprintf(stderr, "azfunc-worker: %s\n", text ? text : azf_python_errmsg(a->py));
        rc = azf_worker_opts_set_init_error(opts, text);
        free(text);
        azf_python_free(a->py);
        a->py = NULL;
        return rc ? rc : 1;
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
    const char *python = NULL, *venv = NULL;
    if (python_args(argc, argv, &python, &venv)) {
        azf_worker_opts_free(opts);
        return 2;
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
    int started = 0;   /* app_start reports its own errors */
    int no_python = 0; /* Python did not start: the host is told at init, then we exit 1 */
    if ((rc = azf_worker_provider_new(&p)) ||
        ((rc = app_start(&a, opts, p, python, venv)) == 1 ? (no_python = 1, rc = 0) : rc) ||
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
    return rc || no_python ? 1 : 0;
}
