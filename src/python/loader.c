/* The core side of the Python adapter: finds libazfunc-python3.X.so, dlopens
 * it, checks its ABI and forwards the public azf_python_* calls to it.
 * libazfunc itself never links libpython. */
#include "azfunc/python.h"
#include "common/common_internal.h"
#include "python/plugin_abi.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AZF_PYTHON_DEFAULT_VERSION
#error "AZF_PYTHON_DEFAULT_VERSION must be set by the build"
#endif
#ifndef AZF_INSTALL_LIBDIR
#error "AZF_INSTALL_LIBDIR must be set by the build"
#endif

struct azf_python_opts {
    int mode;
    char *version;
    char *plugin_path;
    char *venv;
    char *script_file_name;
    azf_python_log_fn log;
    void *log_user_data;
};

struct azf_python_error {
    char *message;
    char *stack_trace;
};

struct azf_python {
    azf_python_opts opts;
    const azf__py_plugin *plugin;
    azf__py_runtime *rt;
    char *plugin_file;
    azf_python_error error;
    int has_error;
    azf__errmsg errmsg;
    azf_handler *handler;
};

struct azf_python_index {
    int use_default;
    size_t count;
    char **metadata;
};

/* ------------------------------------------------------------------ options */

int azf_python_opts_new(azf_python_opts **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_python_opts *o = azf__calloc(1, sizeof *o);
    if (!o)
        return AZF_E_NOMEM;
    *out = o;
    return 0;
}

static void opts_clear(azf_python_opts *o)
{
    azf__free(o->version);
    azf__free(o->plugin_path);
    azf__free(o->venv);
    azf__free(o->script_file_name);
    memset(o, 0, sizeof *o);
}

void azf_python_opts_free(azf_python_opts *opts)
{
    if (!opts)
        return;
    opts_clear(opts);
    azf__free(opts);
}

static int set_str(char **field, const char *value)
{
    char *copy = NULL;
    if (value && !(copy = azf__strdup(value)))
        return AZF_E_NOMEM;
    azf__free(*field);
    *field = copy;
    return 0;
}

int azf_python_opts_set_mode(azf_python_opts *opts, int mode)
{
    if (!opts || (mode != AZF_PYTHON_EMBEDDED && mode != AZF_PYTHON_EXTENSION))
        return AZF_E_INVALID;
    opts->mode = mode;
    return 0;
}

int azf_python_opts_set_version(azf_python_opts *opts, const char *version)
{
    /* A version is part of a file name: digits and dots only. */
    if (!opts || (version && (!*version || strspn(version, "0123456789.") != strlen(version))))
        return AZF_E_INVALID;
    return set_str(&opts->version, version);
}

int azf_python_opts_set_plugin_path(azf_python_opts *opts, const char *path)
{
    return opts ? set_str(&opts->plugin_path, path) : AZF_E_INVALID;
}

int azf_python_opts_set_venv(azf_python_opts *opts, const char *venv_dir)
{
    return opts ? set_str(&opts->venv, venv_dir) : AZF_E_INVALID;
}

int azf_python_opts_set_script_file_name(azf_python_opts *opts, const char *name)
{
    return opts ? set_str(&opts->script_file_name, name) : AZF_E_INVALID;
}

int azf_python_opts_set_log_callback(azf_python_opts *opts, azf_python_log_fn fn, void *user_data)
{
    if (!opts)
        return AZF_E_INVALID;
    opts->log = fn;
    opts->log_user_data = user_data;
    return 0;
}

static int opts_copy(azf_python_opts *dst, const azf_python_opts *src)
{
    dst->mode = src->mode;
    dst->log = src->log;
    dst->log_user_data = src->log_user_data;
    if (set_str(&dst->version, src->version) || set_str(&dst->plugin_path, src->plugin_path) ||
        set_str(&dst->venv, src->venv) || set_str(&dst->script_file_name, src->script_file_name))
        return AZF_E_NOMEM;
    return 0;
}

/* ------------------------------------------------------------------ handle */

/* The handler callbacks: user_data is the azf_python. */
static int handler_invoke(azf_invocation *inv, void *user_data)
{
    azf_python *py = user_data;
    if (!py || !py->rt) {
        azf_invocation_fail(inv, "RuntimeError: the Python runtime is not started", "");
        return 0;
    }
    return py->plugin->invoke(py->rt, inv);
}

/* azf_invocation_run: a sync function runs on the caller's thread. */
static int handler_run(azf_invocation *inv, void *user_data)
{
    azf_python *py = user_data;
    if (!py || !py->rt) {
        azf_invocation_fail(inv, "RuntimeError: the Python runtime is not started", "");
        return 0;
    }
    return py->plugin->run(py->rt, inv);
}

static void handler_cancel(azf_invocation *inv, void *user_data)
{
    azf_python *py = user_data;
    if (py && py->rt)
        py->plugin->cancel(py->rt, inv);
}

int azf_python_new(azf_python **out, const azf_python_opts *opts)
{
    if (!out)
        return AZF_E_INVALID;
    azf_python *py = azf__calloc(1, sizeof *py);
    if (!py)
        return AZF_E_NOMEM;
    if (azf_handler_new(&py->handler) < 0 ||
        azf_handler_set_invoke(py->handler, handler_invoke) < 0 ||
        azf_handler_set_run(py->handler, handler_run) < 0 ||
        azf_handler_set_cancel(py->handler, handler_cancel) < 0 ||
        (opts && opts_copy(&py->opts, opts) < 0)) {
        azf_python_free(py);
        return AZF_E_NOMEM;
    }
    *out = py;
    return 0;
}

static void error_clear(azf_python *py)
{
    azf__free(py->error.message);
    azf__free(py->error.stack_trace);
    py->error.message = py->error.stack_trace = NULL;
    py->has_error = 0;
    azf__err_clear(&py->errmsg);
}

void azf_python_free(azf_python *py)
{
    if (!py)
        return;
    if (py->rt)
        py->plugin->close(py->rt);
    /* The plugin stays mapped: libpython cannot be unloaded safely. */
    error_clear(py);
    azf_handler_free(py->handler);
    azf__free(py->plugin_file);
    opts_clear(&py->opts);
    azf__free(py);
}

const char *azf_python_errmsg(const azf_python *py)
{
    return py ? py->errmsg.text : "invalid handle";
}

const azf_python_error *azf_python_last_error(const azf_python *py)
{
    return py && py->has_error ? &py->error : NULL;
}

const char *azf_python_error_message(const azf_python_error *err)
{
    return err && err->message ? err->message : "";
}

const char *azf_python_error_stack_trace(const azf_python_error *err)
{
    return err && err->stack_trace ? err->stack_trace : "";
}

const char *azf_python_plugin_path(const azf_python *py)
{
    return py ? py->plugin_file : NULL;
}

const char *azf_python_version(const azf_python *py)
{
    return py && py->rt ? py->plugin->runtime_version(py->rt) : NULL;
}

/* ------------------------------------------------------------------ plugin */

static void host_log(int level, const char *message)
{
    azf__log(level, "%s", message);
}

static const azf__py_api api_table = {
#define AZF__PY_API_INIT(name) name,
    AZF__PY_API_FUNCS(AZF__PY_API_INIT)
#undef AZF__PY_API_INIT
};

static const azf__py_host host_table = {
    AZF__PY_ABI_VERSION, sizeof(azf__py_host), azf__malloc, azf__free, host_log, &api_table,
};

/* The directory holding libazfunc's own code (the shared library, or the
 * executable when linked statically), with a trailing slash. */
static char *own_dir(void)
{
    Dl_info info;
    if (!dladdr((void *)&host_table, &info) || !info.dli_fname)
        return NULL;
    const char *slash = strrchr(info.dli_fname, '/');
    return slash ? azf__strndup(info.dli_fname, (size_t)(slash - info.dli_fname) + 1)
                 : azf__strdup("./");
}

/* The plugin file to load: an explicit path, else libazfunc-python<ver>.so
 * next to libazfunc, else in the install libdir. */
static int find_plugin(azf_python *py, char **out)
{
    const char *path = py->opts.plugin_path;
    const char *version = py->opts.version;
    if (!path && !version) {
        const char *env = getenv("AZF_PYTHON_PLUGIN");
        path = env && *env ? env : NULL;
    }
    if (!path && !version) {
        const char *env = getenv("AZF_PYTHON_VERSION");
        version = env && *env ? env : AZF_PYTHON_DEFAULT_VERSION;
    }
    if (path) {
        if (!(*out = azf__strdup(path)))
            return AZF_E_NOMEM;
        return 0;
    }
    if (strspn(version, "0123456789.") != strlen(version))
        return azf__err(&py->errmsg, AZF_E_INVALID, "invalid Python version \"%s\"", version);
    char *dir = own_dir();
    const char *dirs[2] = {dir, AZF_INSTALL_LIBDIR "/"};
    for (size_t i = 0; i < 2; i++) {
        if (!dirs[i])
            continue;
        char *file = azf__asprintf("%slibazfunc-python%s.so", dirs[i], version);
        if (!file) {
            azf__free(dir);
            return AZF_E_NOMEM;
        }
        if (access(file, R_OK) == 0) {
            azf__free(dir);
            *out = file;
            return 0;
        }
        azf__free(file);
    }
    azf__err(&py->errmsg, AZF_E_NOTFOUND,
             "no Python %s adapter: libazfunc-python%s.so is neither in %s nor in %s", version,
             version, dir ? dir : "(unknown)", AZF_INSTALL_LIBDIR);
    azf__free(dir);
    return AZF_E_NOTFOUND;
}

static int load_plugin(azf_python *py)
{
    char *file = NULL;
    int rc = find_plugin(py, &file);
    if (rc < 0)
        return rc == AZF_E_NOMEM ? azf__err(&py->errmsg, rc, "out of memory") : rc;
    /* RTLD_GLOBAL: CPython's own extension modules (lib-dynload) expect the
     * libpython symbols in the global scope. */
    void *h = dlopen(file, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        rc = azf__err(&py->errmsg, access(file, R_OK) ? AZF_E_NOTFOUND : AZF_E_LOAD,
                      "cannot load the Python adapter %s: %s", file, dlerror());
        azf__free(file);
        return rc;
    }
    azf__py_entry_fn entry;
    *(void **)&entry = dlsym(h, AZF__PY_ENTRY);
    const azf__py_plugin *p = entry ? entry(&host_table) : NULL;
    if (!p || p->abi_version != AZF__PY_ABI_VERSION || p->size < sizeof(azf__py_plugin)) {
        rc = azf__err(&py->errmsg, AZF_E_LOAD,
                      "%s is not a compatible Python adapter (plugin ABI %d expected)", file,
                      AZF__PY_ABI_VERSION);
        azf__free(file);
        return rc;
    }
    py->plugin = p;
    py->plugin_file = file;
    return 0;
}

/* ------------------------------------------------------------------ calls */

static void result_free(azf__py_result *res)
{
    for (size_t i = 0; i < res->count; i++)
        azf__free(res->metadata[i]);
    azf__free(res->metadata);
    azf__free(res->error_message);
    azf__free(res->error_stack);
    memset(res, 0, sizeof *res);
}

/* Moves a failed call's error onto the handle. */
static int take_error(azf_python *py, int rc, azf__py_result *res)
{
    if (rc == AZF_E_NOMEM && !res->error_message)
        return azf__err(&py->errmsg, rc, "out of memory");
    azf__err(&py->errmsg, rc, "%s", res->error_message ? res->error_message : azf_strerror(rc));
    if (rc == AZF_E_PYTHON && res->error_stack) {
        py->error.message = res->error_message;
        py->error.stack_trace = res->error_stack;
        res->error_message = res->error_stack = NULL;
        py->has_error = 1;
    }
    return rc;
}

int azf_python_start(azf_python *py)
{
    if (!py)
        return AZF_E_INVALID;
    error_clear(py);
    if (py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is already started");
    if (!py->plugin) {
        int rc = load_plugin(py);
        if (rc < 0)
            return rc;
    }
    const char *venv = py->opts.venv;
    if (!venv)
        venv = getenv("VIRTUAL_ENV");
    azf__py_config cfg = {py->opts.mode, venv, py->opts.script_file_name, py->opts.log,
                          py->opts.log_user_data};
    azf__py_result res = {0};
    int rc = py->plugin->open(&py->rt, &cfg, &res);
    if (rc < 0)
        take_error(py, rc, &res);
    result_free(&res);
    return rc;
}

int azf_python_index_app(azf_python *py, const char *app_dir, azf_python_index **out)
{
    if (!py || !app_dir || !out)
        return AZF_E_INVALID;
    error_clear(py);
    if (!py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is not started");
    azf_python_index *idx = azf__calloc(1, sizeof *idx);
    if (!idx)
        return azf__err(&py->errmsg, AZF_E_NOMEM, "out of memory");
    azf__py_result res = {0};
    int rc = py->plugin->index(py->rt, app_dir, &res);
    if (rc < 0) {
        take_error(py, rc, &res);
        result_free(&res);
        azf__free(idx);
        return rc;
    }
    idx->use_default = res.use_default || res.count == 0;
    idx->count = res.count;
    idx->metadata = res.metadata;
    res.metadata = NULL;
    res.count = 0;
    result_free(&res);
    *out = idx;
    return 0;
}

void azf_python_index_free(azf_python_index *idx)
{
    if (!idx)
        return;
    for (size_t i = 0; i < idx->count; i++)
        azf__free(idx->metadata[i]);
    azf__free(idx->metadata);
    azf__free(idx);
}

int azf_python_index_use_default(const azf_python_index *idx)
{
    return idx ? idx->use_default : 0;
}

size_t azf_python_index_count(const azf_python_index *idx)
{
    return idx ? idx->count : 0;
}

const char *azf_python_index_metadata(const azf_python_index *idx, size_t i)
{
    return idx && i < idx->count ? idx->metadata[i] : NULL;
}

int azf_python_load(azf_python *py, const char *function_id, const char *metadata_json)
{
    if (!py || !function_id || !metadata_json)
        return AZF_E_INVALID;
    error_clear(py);
    if (!py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is not started");
    azf__py_result res = {0};
    int rc = py->plugin->load(py->rt, function_id, metadata_json, &res);
    if (rc < 0)
        take_error(py, rc, &res);
    result_free(&res);
    return rc;
}

/* ------------------------------------------------------------------ invocations */

const azf_handler *azf_python_handler(azf_python *py)
{
    return py ? py->handler : NULL;
}

int azf_python_register(azf_python *py, azf_registry *reg, const azf_python_index *idx)
{
    if (!py || !reg || !idx)
        return AZF_E_INVALID;
    error_clear(py);
    for (size_t i = 0; i < idx->count; i++) {
        int rc = azf_registry_add(reg, idx->metadata[i], py->handler, py);
        if (rc < 0)
            return azf__err(&py->errmsg, rc, "function %zu of the index: %s", i,
                            azf_registry_errmsg(reg));
    }
    return (int)idx->count;
}

int azf_python_drain(azf_python *py, int timeout_ms)
{
    if (!py)
        return AZF_E_INVALID;
    error_clear(py);
    if (!py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is not started");
    return py->plugin->drain(py->rt, timeout_ms);
}

int azf_python_reload_environment(azf_python *py, const azf_value_map *env, const char *app_dir)
{
    if (!py)
        return AZF_E_INVALID;
    error_clear(py);
    if (!py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is not started");
    size_t n = azf_value_map_count(env);
    const char **pairs = azf__calloc(2 * n + 1, sizeof *pairs);
    if (!pairs)
        return azf__err(&py->errmsg, AZF_E_NOMEM, "out of memory");
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        const char *key;
        const azf_value *v = azf_value_map_at(env, i, &key);
        int kind = azf_value_kind(v);
        if (kind != AZF_VALUE_STRING && kind != AZF_VALUE_JSON) {
            azf__free(pairs);
            return azf__err(&py->errmsg, AZF_E_INVALID,
                            "environment variable %s is not a string value", key);
        }
        pairs[k++] = key;
        pairs[k++] = azf_value_data(v, NULL);
    }
    azf__py_result res = {0};
    int rc = py->plugin->reload(py->rt, pairs, app_dir, &res);
    azf__free(pairs);
    if (rc < 0)
        take_error(py, rc, &res);
    result_free(&res);
    return rc;
}

int azf_python_init_app(azf_python *py, const char *app_dir, const char *http_host,
                        azf_value_map *caps)
{
    if (!py || !caps)
        return AZF_E_INVALID;
    error_clear(py);
    if (!py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is not started");
    azf__py_result res = {0};
    int rc = py->plugin->init_app(py->rt, app_dir && *app_dir ? app_dir : NULL,
                                  http_host && *http_host ? http_host : "127.0.0.1", &res);
    if (rc < 0)
        take_error(py, rc, &res);
    for (size_t i = 0; rc == 0 && i + 1 < res.count; i += 2) {
        azf_value *v = NULL;
        rc = azf_value_new_data(&v, AZF_VALUE_STRING, res.metadata[i + 1],
                                strlen(res.metadata[i + 1]));
        if (rc == 0 && (rc = azf_value_map_set(caps, res.metadata[i], v)) != 0)
            azf_value_free(v);
        if (rc)
            rc = azf__err(&py->errmsg, rc, "out of memory");
    }
    result_free(&res);
    return rc;
}
