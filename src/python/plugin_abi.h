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

#define AZF__PY_ABI_VERSION 1
#define AZF__PY_ENTRY "azf__python_plugin_v1"

/* What the core lends the plugin. */
typedef struct azf__py_host {
    uint32_t abi_version;
    uint32_t size;
    void *(*malloc)(size_t size);
    void (*free)(void *ptr);
    void (*log)(int level, const char *message);
} azf__py_host;

/* How to start the runtime (strings borrowed for the duration of the call). */
typedef struct azf__py_config {
    int mode;                     /* AZF_PYTHON_EMBEDDED or AZF_PYTHON_EXTENSION */
    const char *venv;             /* virtual environment directory or NULL */
    const char *script_file_name; /* v2 script name or NULL (PYTHON_SCRIPT_FILE_NAME) */
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
    int (*open)(azf__py_runtime **out, const azf__py_config *cfg, azf__py_result *res);
    void (*close)(azf__py_runtime *rt);
    const char *(*runtime_version)(azf__py_runtime *rt); /* Py_GetVersion() */
    int (*index)(azf__py_runtime *rt, const char *app_dir, azf__py_result *res);
    int (*load)(azf__py_runtime *rt, const char *function_id, const char *metadata_json,
                azf__py_result *res);
} azf__py_plugin;

typedef const azf__py_plugin *(*azf__py_entry_fn)(const azf__py_host *host);

#endif
