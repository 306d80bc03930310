/* The internal ABI between the core (loader.c) and the Python adapter plugin
 * (libazfunc-python3.X.so, plugin.c). Not public: both sides are built from
 * one source tree, but a plugin found on disk may come from another build,
 * so the core checks AZF__PY_ABI_VERSION and the table size at load time.
 *
 * Rules: the plugin never links libazfunc; it allocates every string it
 * hands back with the core's allocator (azf__py_host.malloc) and the core
 * frees it. Functions may grow only at the end of the table (bump size);
 * an incompatible change bumps AZF__PY_ABI_VERSION and the entry name. */
#ifndef AZF_PYTHON_PLUGIN_ABI_H
#define AZF_PYTHON_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "azfunc/python.h"
#include "azfunc/registry.h"
#include "azfunc/value.h"

#define AZF__PY_ABI_VERSION 4
#define AZF__PY_ENTRY "azf__python_plugin_v4"

/* The public functions the plugin calls on values and invocations, lent by the
 * core as pointers (the plugin does not link libazfunc). */
/* clang-format off */
#define AZF__PY_API_FUNCS(X) \
    X(azf_value_kind) \
    X(azf_value_kind_name) \
    X(azf_value_data) \
    X(azf_value_int) \
    X(azf_value_double) \
    X(azf_value_count) \
    X(azf_value_item) \
    X(azf_value_model_version) \
    X(azf_value_model_source) \
    X(azf_value_model_content_type) \
    X(azf_value_model_content) \
    X(azf_value_http_method) \
    X(azf_value_http_url) \
    X(azf_value_http_body) \
    X(azf_value_http_count) \
    X(azf_value_http_entry) \
    X(azf_value_map_count) \
    X(azf_value_map_at) \
    X(azf_value_new_data) \
    X(azf_value_new_int) \
    X(azf_value_new_double) \
    X(azf_value_new_http) \
    X(azf_value_http_set_status_code) \
    X(azf_value_http_set) \
    X(azf_value_http_set_body) \
    X(azf_value_http_add_cookie) \
    X(azf_value_free) \
    X(azf_cookie_new) \
    X(azf_cookie_free) \
    X(azf_cookie_set_domain) \
    X(azf_cookie_set_path) \
    X(azf_cookie_set_expires) \
    X(azf_cookie_set_secure) \
    X(azf_cookie_set_http_only) \
    X(azf_cookie_set_same_site) \
    X(azf_cookie_set_max_age) \
    X(azf_invocation_function) \
    X(azf_invocation_id) \
    X(azf_invocation_inputs) \
    X(azf_invocation_trigger_metadata) \
    X(azf_invocation_trace_parent) \
    X(azf_invocation_trace_state) \
    X(azf_invocation_trace_attributes) \
    X(azf_invocation_retry_context) \
    X(azf_invocation_cancel_requested) \
    X(azf_invocation_set_output) \
    X(azf_invocation_set_return) \
    X(azf_invocation_complete) \
    X(azf_invocation_fail) \
    X(azf_invocation_complete_cancelled) \
    X(azf_invocation_log) \
    X(azf_function_name) \
    X(azf_function_id) \
    X(azf_invocation_log_len) \
    X(azf_invocation_fail_len)
/* clang-format on */

typedef struct azf__py_api {
#define AZF__PY_API_FIELD(name) __typeof__(&name) name;
    AZF__PY_API_FUNCS(AZF__PY_API_FIELD)
#undef AZF__PY_API_FIELD
} azf__py_api;

/* What the core lends the plugin. */
typedef struct azf__py_host {
    uint32_t abi_version;
    uint32_t size;
    void *(*malloc)(size_t size);
    void (*free)(void *ptr);
    void (*log)(int level, const char *message);
    const azf__py_api *api;
} azf__py_host;

/* How to start the runtime (strings borrowed for the duration of the call).
 * Embedded mode builds sys.path in the official worker's order: pythonpath,
 * the app's .python_packages, the standard library of home, the venv's
 * site-packages (with its .pth files), bundled, then the app root (appended
 * when the app is indexed or loaded). */
typedef struct azf__py_config {
    int mode;                      /* AZF_PYTHON_EMBEDDED or AZF_PYTHON_EXTENSION */
    const char *home;              /* installation prefix, NULL: the plugin's own */
    const char *executable;        /* sys.executable, or NULL */
    const char *const *pythonpath; /* NULL-terminated PYTHONPATH entries, or NULL */
    const char *app_dir;           /* the app root when known, or NULL */
    const char *venv;              /* virtual environment directory or NULL */
    const char *bundled;           /* libazfunc's own site-packages (azure-functions), or NULL */
    const char *script_file_name;  /* v2 script name or NULL (PYTHON_SCRIPT_FILE_NAME) */
    azf_python_log_fn log;         /* System log records, or NULL */
    void *log_user_data;
} azf__py_config;

/* The outcome of a call. On AZF_E_PYTHON, error_message ("<Type>: <msg>")
 * and error_stack are set; on other errors, only error_message. */
typedef struct azf__py_result {
    int use_default; /* index: 1 = no v2 app, the host reads function.json */
    size_t count;    /* index: number of metadata strings */
    char **metadata; /* index: one JSON object per function */
    char *error_message;
    char *error_stack;
} azf__py_result;

typedef struct azf__py_runtime azf__py_runtime;

typedef struct azf__py_plugin {
    uint32_t abi_version;
    uint32_t size;              /* sizeof(azf__py_plugin) of the plugin's build */
    const char *python_version; /* PY_VERSION the plugin was compiled against */
    const char *home;           /* sys.base_prefix of the Python it was built against */
    int (*open)(azf__py_runtime **out, const azf__py_config *cfg, azf__py_result *res);
    void (*close)(azf__py_runtime *rt);
    const char *(*runtime_version)(azf__py_runtime *rt); /* Py_GetVersion() */
    const char *(*executable)(azf__py_runtime *rt);      /* sys.executable ("" if none) */
    int (*index)(azf__py_runtime *rt, const char *app_dir, azf__py_result *res);
    int (*load)(azf__py_runtime *rt, const char *function_id, const char *metadata_json,
                azf__py_result *res);
    /* The handler callbacks: never take the GIL. */
    int (*invoke)(azf__py_runtime *rt, azf_invocation *inv);
    void (*cancel)(azf__py_runtime *rt, azf_invocation *inv);
    int (*drain)(azf__py_runtime *rt, int timeout_ms);
    /* env: NULL-terminated name, value, name, value, ... (borrowed). */
    int (*reload)(azf__py_runtime *rt, const char *const *env, const char *app_dir,
                  azf__py_result *res);
    /* azf_invocation_run: may run a sync function on the calling thread (takes the GIL). */
    int (*run)(azf__py_runtime *rt, azf_invocation *inv);
    /* azf_python_init_app: the capabilities come back in res->metadata as name, value,
     * name, value (res->count strings). */
    int (*init_app)(azf__py_runtime *rt, const char *app_dir, const char *http_host,
                    azf__py_result *res);
} azf__py_plugin;

typedef const azf__py_plugin *(*azf__py_entry_fn)(const azf__py_host *host);

#endif
