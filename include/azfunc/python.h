/* libazfunc — the Python adapter: one CPython interpreter that indexes and
 * loads Azure Functions Python apps (v2 function_app.py and v1 function.json).
 *
 * The core library does not link libpython. azf_python_start picks a Python by
 * one rule (docs/local-runner.md "Which Python runs"), first match wins:
 *   1. an explicit choice: azf_python_opts_set_interpreter (a python executable,
 *      of an installation or of a venv) or azf_python_opts_set_version ("3.12";
 *      the environment's AZF_PYTHON_VERSION when no option is set);
 *   2. the app's virtual environment: azf_python_opts_set_venv, else VIRTUAL_ENV,
 *      else .venv/ or venv/ in the app root (azf_python_opts_set_app_dir);
 *   3. FUNCTIONS_WORKER_RUNTIME_VERSION (set by the Functions host);
 *   4. python3 on PATH;
 *   5. the Python libazfunc was built with.
 * The interpreter, its standard library and its libpython then come from one
 * installation of that X.Y: the venv's (its pyvenv.cfg "home") or the
 * interpreter's when it has a shared libpython, else the one the adapter was
 * built against. A venv only adds its site-packages; an explicit choice that
 * disagrees with the venv's version is an error that names both.
 * The adapter for X.Y is libazfunc-python<X.Y>.so, looked up next to libazfunc,
 * in ../<libdir>/ and ../ from there, and in the install libdir;
 * azf_python_opts_set_plugin_path (or AZF_PYTHON_PLUGIN) names a file instead.
 *
 * Thread safety: an azf_python is used by one thread at a time. Exception:
 * azf_python_start and azf_python_free must run on the same thread in
 * embedded mode (CPython finalises on the thread that initialised it).
 * Only one embedded runtime may be started per process at a time.
 */
#ifndef AZFUNC_PYTHON_H
#define AZFUNC_PYTHON_H

#include "azfunc/common.h"
#include "azfunc/registry.h"
#include "azfunc/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct azf_python_opts azf_python_opts;
typedef struct azf_python azf_python;
typedef struct azf_python_index azf_python_index;
typedef struct azf_python_error azf_python_error;

/* Runtime modes. */
enum {
    /* Start an interpreter (isolated PyConfig, no signal handlers) and
     * finalise it in azf_python_free. */
    AZF_PYTHON_EMBEDDED = 0,
    /* Attach to the interpreter that is already running in this process
     * (the bindings/python extension); never initialise or finalise it, and
     * leave its sys.path alone except for the app's own directories. The
     * extension module is built from the plugin's sources without linking
     * libpython and exports the same entry point, so it passes its own file
     * to azf_python_opts_set_plugin_path: a second libpython is never loaded. */
    AZF_PYTHON_EXTENSION = 1
};

/* Options. All strings are copied. Setters return 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_python_opts_new(azf_python_opts **out);
AZF_API void azf_python_opts_free(azf_python_opts *opts);
AZF_API int azf_python_opts_set_mode(azf_python_opts *opts, int mode);
/* "3.11": load libazfunc-python3.11.so. NULL restores the default. */
AZF_API int azf_python_opts_set_version(azf_python_opts *opts, const char *version);
/* An explicit plugin file; wins over the version. NULL restores the default. */
AZF_API int azf_python_opts_set_plugin_path(azf_python_opts *opts, const char *path);
/* A virtual environment directory (see the rule above): its Python runs, and its
 * lib/python3.X/site-packages (with its .pth files) goes on sys.path after the
 * standard library. NULL restores the default. */
AZF_API int azf_python_opts_set_venv(azf_python_opts *opts, const char *venv_dir);
/* A Python executable (of an installation, or of a venv, which then applies). NULL
 * restores the default; "" is AZF_E_INVALID. */
AZF_API int azf_python_opts_set_interpreter(azf_python_opts *opts, const char *path);
/* The app root, known before any app is indexed: its .venv/ or venv/ is found, and
 * its .python_packages go on sys.path before anything is imported. NULL restores
 * the default (none); "" is AZF_E_INVALID. */
AZF_API int azf_python_opts_set_app_dir(azf_python_opts *opts, const char *app_dir);
/* Why the last azf_app_open given these options failed (never NULL; "" if it did
 * not): the channel for errors that happen before a handle exists. Borrowed until
 * the next azf_app_open with opts or azf_python_opts_free. */
AZF_API const char *azf_python_opts_errmsg(const azf_python_opts *opts);
/* The v2 script file name. Default: PYTHON_SCRIPT_FILE_NAME as seen by
 * Python's os.environ at index time, else "function_app.py". */
AZF_API int azf_python_opts_set_script_file_name(azf_python_opts *opts, const char *name);

/* System logs: records the Python side emits outside any invocation, or from
 * loggers named azure_functions_worker* or azure.functions* (the worker sends
 * them as RpcLog with log_category System), and the runtime's own notes.
 * level is AZF_LOG_* mapped from the Python level (>= 50 critical, >= 40 error,
 * >= 30 warning, >= 20 information, >= 10 debug); category is the logger name;
 * strings are borrowed for the call. Called from any Python thread, without the
 * GIL; it must not call back into the azf_python handle. Default: none (dropped). */
typedef void (*azf_python_log_fn)(int level, const char *category, const char *message,
                                  void *user_data);
AZF_API int azf_python_opts_set_log_callback(azf_python_opts *opts, azf_python_log_fn fn,
                                             void *user_data);

/* Creates a runtime handle (no interpreter yet). opts: copied; NULL = defaults.
 * Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_python_new(azf_python **out, const azf_python_opts *opts);

/* Picks the Python (see above), loads its plugin and starts (or attaches to) the
 * interpreter. Embedded mode: sys.path becomes, in the official worker's order,
 * PYTHONPATH's entries, the app's .python_packages/lib/site-packages (and
 * lib/python3.X/site-packages), the standard library, the venv's site-packages,
 * libazfunc's bundled site-packages for that X.Y (a pinned azure-functions, the
 * fallback when the app brings none); the app root is appended when the app is
 * indexed or loaded, and azure.functions is imported only then. Extension mode
 * leaves sys.path to the host interpreter except for the app's directories.
 * Returns 0, AZF_E_NOTFOUND (no such venv or interpreter, no plugin for that
 * version), AZF_E_INVALID (a version mismatch, a directory that is not a venv),
 * AZF_E_LOAD (dlopen or ABI mismatch), AZF_E_STATE (already started; or an embedded
 * runtime is already running; or another installation of that X.Y is loaded in this
 * process; or extension mode without a running interpreter), AZF_E_PYTHON,
 * AZF_E_NOMEM. azf_python_errmsg says which and why. */
AZF_API int azf_python_start(azf_python *py);

/* Stops the runtime (finalises an embedded interpreter) and frees the handle.
 * NULL is a no-op. */
AZF_API void azf_python_free(azf_python *py);

/* The last error's text (never NULL; "" if none), cut to 511 bytes; the full
 * Python texts are in azf_python_last_error. Borrowed until the next call on py. */
AZF_API const char *azf_python_errmsg(const azf_python *py);

/* The last Python error (exception raised while indexing or loading), or NULL
 * when the last call did not fail in Python. Borrowed until the next call on py. */
AZF_API const azf_python_error *azf_python_last_error(const azf_python *py);
/* "<Type>: <message>", exactly as the official worker's RpcException.message. */
AZF_API const char *azf_python_error_message(const azf_python_error *err);
/* Frames only, no header line (the worker's RpcException.stack_trace). */
AZF_API const char *azf_python_error_stack_trace(const azf_python_error *err);

/* The plugin file in use and the interpreter's sys.version; NULL before start. */
AZF_API const char *azf_python_plugin_path(const azf_python *py);
AZF_API const char *azf_python_version(const azf_python *py);
/* The running interpreter's sys.executable ("" in extension mode) and the venv in
 * use (NULL when none); NULL before start. Borrowed until azf_python_free. */
AZF_API const char *azf_python_executable(const azf_python *py);
AZF_API const char *azf_python_venv(const azf_python *py);

/* Indexes the app in app_dir (borrowed) the way the worker answers a
 * FunctionsMetadataRequest: imports the v2 script, finds the one
 * FunctionRegister, validates every function. The result is cached: a runtime
 * serves one app, and later calls return the same outcome.
 * *out (owned, free with azf_python_index_free) on success.
 * Returns 0, AZF_E_PYTHON (indexing raised: see azf_python_last_error; the
 * host gets a Failure and no functions), AZF_E_STATE (not started),
 * AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_python_index_app(azf_python *py, const char *app_dir, azf_python_index **out);
AZF_API void azf_python_index_free(azf_python_index *idx);
/* 1 when the app has no v2 script or no functions: use function.json
 * (FunctionMetadataResponse.use_default_metadata_indexing). */
AZF_API int azf_python_index_use_default(const azf_python_index *idx);
AZF_API size_t azf_python_index_count(const azf_python_index *idx);
/* Function i's metadata, a JSON object (borrowed until the index is freed):
 *   {"name", "functionId", "directory", "scriptFile", "entryPoint",
 *    "bindings": [function.json binding objects],
 *    "rawBindings": [the library's get_raw_bindings() strings, verbatim],
 *    "retry": {"strategy", "maxRetryCount", "delayInterval" |
 *              "minimumInterval" and "maximumInterval"}   (only if set),
 *    "properties": {"worker_indexed": "True"}}
 * NULL when i is out of range. */
AZF_API const char *azf_python_index_metadata(const azf_python_index *idx, size_t i);

/* Loads one function, as the worker answers a FunctionLoadRequest.
 * function_id: borrowed. metadata_json: borrowed, a JSON object with "name",
 * "directory" (the function folder for v1), "scriptFile" (absolute, or
 * relative to directory; default __init__.py), "entryPoint" (default main),
 * "bindings" (a function.json list, or a map name -> {type, direction,
 * dataType}) and optionally "properties". A function already indexed under
 * function_id succeeds at once; "properties": {"worker_indexed": ...} indexes
 * the app in "directory" first (a worker that was never asked for metadata).
 * Returns 0, AZF_E_PYTHON (see azf_python_last_error), AZF_E_STATE,
 * AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_python_load(azf_python *py, const char *function_id, const char *metadata_json);

/* ---- invocations --------------------------------------------------------------
 * The handler that runs registered Python functions (see azf_handler in registry.h).
 * Borrowed from py until azf_python_free; pass py itself as user_data to
 * azf_registry_add / azf_registry_load_v1 (the registry never releases it).
 * Functions are found by the registry function's id (the id given to
 * azf_python_load, or the "functionId" of the index), else by its name.
 *
 * Threads: invoke never takes the GIL; it queues the invocation and returns.
 * async def functions run on one persistent asyncio loop thread; sync functions
 * on a pool of PYTHON_THREADPOOL_THREAD_COUNT threads (default
 * min(32, cpu_count + 4); the host injects 1000), each with
 * context.thread_local_storage.invocation_id set around the call. Inputs are
 * converted to Python and outputs back on the thread that runs the function.
 * User log records (root logger, INFO; DEBUG with PYTHON_ENABLE_DEBUG_LOGGING)
 * whose invocation is known (asyncio task, then thread_local_storage) go to
 * azf_invocation_log before completion; the others to the log callback.
 *
 * Completion: exactly one per invocation. Success with outputs and return
 * value; Failure "<Type>: <message>" with frames (SystemExit included: the
 * process is not exited); Cancelled when azf_invocation_cancel reaches an async
 * function (its task is cancelled) or any function before it started. A sync
 * function that is already running cannot be interrupted: it completes with its
 * own outcome when it returns. The runtime must be started, and every
 * invocation completed (azf_python_drain), before azf_python_free.
 *
 * The starter's completion and log callbacks run on Python threads without the
 * GIL, while the adapter holds that invocation's lock: they must not wait for
 * the GIL (an extension-mode host that calls Python there must hand the work to
 * another thread). The handler's callbacks may be called from any thread. */
AZF_API const azf_handler *azf_python_handler(azf_python *py);

/* Adds every function of idx (azf_python_index_metadata) to reg with the Python
 * handler and py as user_data. Functions loaded with azf_python_load (v1) are
 * added by the caller (azf_registry_add or azf_registry_load_v1 with
 * azf_python_handler(py) and py; azf_registry_bind_id with the same id).
 * Returns the number of functions added (>= 0), or the azf_registry_add error
 * (AZF_E_PARSE, AZF_E_EXISTS, AZF_E_NOMEM; azf_python_errmsg says which
 * function), AZF_E_INVALID. */
AZF_API int azf_python_register(azf_python *py, azf_registry *reg, const azf_python_index *idx);

/* Stops accepting invocations (later ones fail at once with "RuntimeError: the
 * Python worker is shutting down"), cancels running async functions once the
 * deadline passes, waits up to timeout_ms (< 0: forever) for the running ones,
 * then fails each one still running with "TimeoutError: the invocation did not
 * finish before the worker shut down" (exactly one completion each; a sync
 * function that never returns keeps its thread, which is abandoned).
 * Returns the number of invocations failed (>= 0), AZF_E_STATE (not started),
 * AZF_E_INVALID. */
AZF_API int azf_python_drain(azf_python *py, int timeout_ms);

/* What the worker does at WorkerInitRequest, and again after an environment reload
 * (host-protocol.md §3.3, §3.8, §7, §9), with the settings in the environment:
 *  - OpenTelemetry: PYTHON_ENABLE_OPENTELEMETRY (propagate the host's trace context
 *    into every invocation, with the app's opentelemetry-api) and
 *    PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY (configure the app's Azure Monitor
 *    distro); a package that is missing is a System log, not an error;
 *  - init indexing (PYTHON_ENABLE_INIT_INDEXING; always from Python 3.13): index the
 *    app in app_dir (borrowed; NULL or "": skipped) now. An indexing error is kept for
 *    azf_python_index_app, not returned. If the app imported an HTTP extension
 *    (azurefunctions-extensions-http-fastapi), start the HTTP streaming server on
 *    http_host (borrowed; NULL: 127.0.0.1) and a free port, and return once it listens.
 * Adds the capabilities to advertise to caps (borrowed; string values):
 * WorkerOpenTelemetryEnabled, HttpUri ("http://<host>:<port>") and
 * RequiresRouteParameters. The server runs until the runtime stops; later calls keep it.
 * Returns 0, AZF_E_PYTHON (the server could not start: see azf_python_last_error),
 * AZF_E_STATE (not started), AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_python_init_app(azf_python *py, const char *app_dir, const char *http_host,
                                azf_value_map *caps);

/* FunctionEnvironmentReloadRequest (host-protocol.md §3.8), in order: app_dir
 * (borrowed, may be NULL) appended to sys.path and the importer cache cleared;
 * os.environ replaced by env (borrowed; string values; NULL = empty); time.tzset;
 * the sync pool re-sized from PYTHON_THREADPOOL_THREAD_COUNT; the root logger
 * level from PYTHON_ENABLE_DEBUG_LOGGING; the worker-extension switch re-read;
 * chdir to app_dir unless PYTHON_ROLLBACK_CWD_PATH is true.
 * Returns 0, AZF_E_PYTHON (see azf_python_last_error), AZF_E_STATE, AZF_E_INVALID. */
AZF_API int azf_python_reload_environment(azf_python *py, const azf_value_map *env,
                                          const char *app_dir);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_PYTHON_H */
