/* The Python adapter plugin: libazfunc-python3.X.so, one build per Python.
 *
 * It owns (embedded mode) or borrows (extension mode) the interpreter and
 * drives the adapter's Python modules (common.py, indexing.py, invocation.py),
 * which are compiled in as C strings (adapter_py.h is generated from them by
 * CMake) and registered in sys.modules before any user code runs, so the
 * plugin is one self-contained file that cannot get out of step with its
 * Python half and that user code on sys.path cannot shadow. The core reaches
 * it only through the table of plugin_abi.h.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "azfunc/common.h"
#include "azfunc/python.h"
#include "python/plugin_abi.h"
#include "python/plugin_internal.h"

#include "adapter_py.h"

#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#ifndef AZF_PYTHON_BUILD_HOME /* the build's sys.base_prefix (CMake); unused in extension mode */
#define AZF_PYTHON_BUILD_HOME ""
#endif

/* The adapter modules in import order. The file names start with "<azfunc-"
 * (common.py's ADAPTER_FILE_PREFIX): their frames are hidden from users. */
static const struct {
    const char *name, *file, *source;
    size_t offset; /* where azf__py_runtime keeps the module */
} adapter_modules[] = {
    {"_azfunc_common", "<azfunc-common>", azf__py_common, offsetof(azf__py_runtime, common)},
    {"_azfunc_telemetry", "<azfunc-telemetry>", azf__py_telemetry,
     offsetof(azf__py_runtime, telemetry)},
    {"_azfunc_httpstream", "<azfunc-httpstream>", azf__py_httpstream,
     offsetof(azf__py_runtime, httpstream)},
    {"_azfunc_indexing", "<azfunc-indexing>", azf__py_indexing,
     offsetof(azf__py_runtime, indexing)},
    {"_azfunc_invocation", "<azfunc-invocation>", azf__py_invocation,
     offsetof(azf__py_runtime, invocation)},
    {"_azfunc_startup", "<azfunc-startup>", azf__py_startup, offsetof(azf__py_runtime, startup)},
};

const azf__py_host *azf__py_host_table;
#define host azf__py_host_table
static int embedded_running; /* guarded by the caller: one start per process */

static char *dup_mem(const char *s, size_t n)
{
    char *p = host->malloc(n + 1);
    if (p) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static char *dup_str(const char *s)
{
    return dup_mem(s, strlen(s));
}

static int fail(azf__py_result *res, int code, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof text, fmt, ap);
    va_end(ap);
    host->free(res->error_message);
    res->error_message = dup_str(text);
    return code;
}

/* A Python str as a freshly allocated UTF-8 string (lone surrogates escaped). */
static char *to_utf8(PyObject *s)
{
    if (!s || !PyUnicode_Check(s))
        return NULL;
    PyObject *b = PyUnicode_AsEncodedString(s, "utf-8", "backslashreplace");
    if (!b) {
        PyErr_Clear();
        return NULL;
    }
    char *out = dup_mem(PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return out;
}

/* Runs module.<entry>(*args) through common.run, which never raises.
 * Returns the result (new reference) or NULL with res filled and *rc set. */
static PyObject *call_adapter(azf__py_runtime *rt, PyObject *module, const char *entry,
                              PyObject *args, azf__py_result *res, int *rc)
{
    PyObject *out = NULL, *ret = NULL, *full = NULL;
    PyObject *run = rt->common ? PyObject_GetAttrString(rt->common, "run") : NULL;
    PyObject *fn = module ? PyObject_GetAttrString(module, entry) : NULL;
    if (!run || !fn || !args)
        goto internal;
    full = PyTuple_New(PyTuple_GET_SIZE(args) + 1);
    if (!full)
        goto internal;
    Py_INCREF(fn);
    PyTuple_SET_ITEM(full, 0, fn);
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(args); i++) {
        PyObject *a = PyTuple_GET_ITEM(args, i);
        Py_INCREF(a);
        PyTuple_SET_ITEM(full, i + 1, a);
    }
    ret = PyObject_Call(run, full, NULL);
    if (!ret || !PyTuple_Check(ret) || PyTuple_GET_SIZE(ret) != 2)
        goto internal;
    PyObject *payload = PyTuple_GET_ITEM(ret, 1);
    if (PyLong_AsLong(PyTuple_GET_ITEM(ret, 0)) == 0) {
        Py_INCREF(payload);
        out = payload;
        *rc = 0;
    } else {
        char *msg = NULL, *stack = NULL;
        if (PyTuple_Check(payload) && PyTuple_GET_SIZE(payload) == 2) {
            msg = to_utf8(PyTuple_GET_ITEM(payload, 0));
            stack = to_utf8(PyTuple_GET_ITEM(payload, 1));
        }
        host->free(res->error_message);
        host->free(res->error_stack);
        res->error_message = msg ? msg
                                 : dup_str("Unhandled exception in function. "
                                           "Could not serialize original exception message.");
        res->error_stack = stack ? stack : dup_str("");
        *rc = AZF_E_PYTHON;
    }
    goto done;
internal:
    PyErr_Clear();
    *rc = fail(res, AZF_E_INTERNAL, "the Python adapter failed to run %s", entry);
done:
    Py_XDECREF(ret);
    Py_XDECREF(full);
    Py_XDECREF(fn);
    Py_XDECREF(run);
    Py_XDECREF(args);
    return out;
}

/* Signals belong to the host. install_signal_handlers = 0 is not enough:
 * CPython still installs its SIGINT handler when _signal is first imported in
 * the main interpreter, and resets SIGINT to SIG_DFL when it finalises. So
 * SIGINT's disposition is saved before, and put back after, both. */
static void keep_sigint(int restore)
{
    static struct sigaction saved;
    if (restore)
        sigaction(SIGINT, &saved, NULL);
    else
        sigaction(SIGINT, NULL, &saved);
}

/* The asyncio loop thread and the logging bridge (invocation.start). */
static int start_runtime(azf__py_runtime *rt, azf__py_result *res)
{
    int rc;
    PyObject *r = call_adapter(rt, rt->invocation, "start", PyTuple_New(0), res, &rc);
    Py_XDECREF(r);
    return rc;
}

static int load_adapter(azf__py_runtime *rt, const azf__py_config *cfg, azf__py_result *res)
{
    PyObject *native = azf__py_native_module(rt);
    PyObject *modules = PyImport_GetModuleDict();
    if (!native || PyDict_SetItemString(modules, "_azfunc_native", native) < 0) {
        Py_XDECREF(native);
        PyErr_Clear();
        return fail(res, AZF_E_NOMEM, "out of memory");
    }
    Py_DECREF(native);
    for (size_t i = 0; i < sizeof adapter_modules / sizeof adapter_modules[0]; i++) {
        PyObject *code =
            Py_CompileString(adapter_modules[i].source, adapter_modules[i].file, Py_file_input);
        if (!code) {
            PyErr_Clear();
            return fail(res, AZF_E_INTERNAL, "the Python adapter module %s does not compile",
                        adapter_modules[i].name);
        }
        PyObject *m =
            PyImport_ExecCodeModuleEx(adapter_modules[i].name, code, adapter_modules[i].file);
        Py_DECREF(code);
        if (!m) {
            PyErr_Clear();
            return fail(res, AZF_E_PYTHON,
                        "the Python adapter failed to import "
                        "(is the standard library reachable?)");
        }
        *(PyObject **)((char *)rt + adapter_modules[i].offset) = m;
    }
    if (rt->mode != AZF_PYTHON_EMBEDDED)
        return start_runtime(rt, res); /* the host interpreter keeps its own sys.path */

    PyObject *front = PyList_New(0);
    for (size_t i = 0; front && cfg->pythonpath && cfg->pythonpath[i]; i++) {
        PyObject *d = PyUnicode_DecodeFSDefault(cfg->pythonpath[i]);
        if (!d || PyList_Append(front, d) < 0)
            Py_CLEAR(front);
        Py_XDECREF(d);
    }
    if (!front) {
        PyErr_Clear();
        return fail(res, AZF_E_NOMEM, "out of memory");
    }
    int rc;
    PyObject *exe = call_adapter(
        rt, rt->indexing, "set_up_paths",
        Py_BuildValue("(Nzzz)", front, cfg->app_dir, cfg->venv, cfg->bundled), res, &rc);
    if (exe && !(rt->executable = to_utf8(exe)))
        rc = fail(res, AZF_E_NOMEM, "out of memory");
    Py_XDECREF(exe);
    return rc < 0 ? rc : start_runtime(rt, res);
}

/* Reads one string into a PyConfig field; 0 or the failure text. */
static const char *config_set(PyConfig *config, wchar_t **field, const char *value)
{
    if (!value || !*value)
        return NULL;
    PyStatus st = PyConfig_SetBytesString(config, field, value);
    return PyStatus_Exception(st) ? (st.err_msg ? st.err_msg : "cannot decode a path") : NULL;
}

static void clear_modules(azf__py_runtime *rt)
{
    Py_CLEAR(rt->startup);
    Py_CLEAR(rt->httpstream);
    Py_CLEAR(rt->telemetry);
    azf__py_funcs_clear(rt, 1);
    Py_CLEAR(rt->invocation);
    Py_CLEAR(rt->indexing);
    Py_CLEAR(rt->common);
}

static void release(azf__py_runtime *rt)
{
    if (!rt)
        return;
    if (!azf__py_invoke_fini(rt, rt->mode == AZF_PYTHON_EMBEDDED))
        return; /* abandoned pool threads still use rt: it stays */
    host->free(rt->script_file_name);
    host->free(rt->executable);
    host->free(rt);
}

static int plugin_open(azf__py_runtime **out, const azf__py_config *cfg, azf__py_result *res)
{
    azf__py_runtime *rt = host->malloc(sizeof *rt);
    if (!rt)
        return fail(res, AZF_E_NOMEM, "out of memory");
    memset(rt, 0, sizeof *rt);
    rt->efd = -1;
    rt->mode = cfg->mode;
    rt->log = cfg->log;
    rt->log_user_data = cfg->log_user_data;
    if (azf__py_invoke_init(rt) < 0) {
        release(rt);
        return fail(res, AZF_E_IO, "cannot create an eventfd");
    }
    if (cfg->script_file_name && !(rt->script_file_name = dup_str(cfg->script_file_name))) {
        release(rt);
        return fail(res, AZF_E_NOMEM, "out of memory");
    }

    int rc;
    PyGILState_STATE gil = PyGILState_UNLOCKED;
    if (cfg->mode == AZF_PYTHON_EMBEDDED) {
        if (embedded_running || Py_IsInitialized()) {
            release(rt);
            return fail(res, AZF_E_STATE,
                        "a Python interpreter is already running in this "
                        "process (use extension mode)");
        }
        PyConfig config;
        /* Isolated: no PYTHON* variables (PYTHONPATH comes in through cfg, as
         * the official worker's interpreter would read it), no user site, no
         * cwd on sys.path, and no signal handlers: signals belong to the host.
         * home pins the standard library to the installation whose libpython
         * the core loaded, whatever python3 comes first on PATH. */
        PyConfig_InitIsolatedConfig(&config);
        config.install_signal_handlers = 0;
        config.site_import = 0; /* no system dist-packages; the venv is added explicitly */
        config.parse_argv = 0;
        const char *home = cfg->home && *cfg->home ? cfg->home : AZF_PYTHON_BUILD_HOME;
        const char *why = config_set(&config, &config.home, home);
        if (!why)
            why = config_set(&config, &config.executable, cfg->executable);
        if (why) {
            PyConfig_Clear(&config);
            release(rt);
            return fail(res, AZF_E_PYTHON, "Python failed to start: %s", why);
        }
        keep_sigint(0);
        PyStatus st = Py_InitializeFromConfig(&config);
        PyConfig_Clear(&config);
        if (PyStatus_Exception(st)) {
            release(rt);
            return fail(res, AZF_E_PYTHON, "Python failed to start from %s: %s", home,
                        st.err_msg ? st.err_msg : "unknown error");
        }
        embedded_running = 1;
        PyObject *sig = PyImport_ImportModule("_signal"); /* its handler goes in now... */
        Py_XDECREF(sig);
        PyErr_Clear();
        keep_sigint(1); /* ...and out again */
    } else {
        if (!Py_IsInitialized()) {
            release(rt);
            return fail(res, AZF_E_STATE, "extension mode needs a running Python interpreter");
        }
        gil = PyGILState_Ensure();
    }

    rc = load_adapter(rt, cfg, res);

    if (cfg->mode == AZF_PYTHON_EMBEDDED) {
        if (rc < 0) {
            clear_modules(rt);
            keep_sigint(0);
            Py_FinalizeEx();
            keep_sigint(1);
            embedded_running = 0;
            release(rt);
            return rc;
        }
        rt->main_tstate = PyEval_SaveThread(); /* other threads may take the GIL now */
    } else {
        if (rc < 0)
            clear_modules(rt);
        PyGILState_Release(gil);
        if (rc < 0) {
            release(rt);
            return rc;
        }
    }
    *out = rt;
    return 0;
}

static void plugin_close(azf__py_runtime *rt)
{
    if (!rt)
        return;
    azf__py_result res = {0};
    int rc;
    azf__py_pool_stop(rt);
    if (rt->mode == AZF_PYTHON_EMBEDDED) {
        PyEval_RestoreThread(rt->main_tstate);
        Py_XDECREF(call_adapter(rt, rt->invocation, "stop", PyTuple_New(0), &res, &rc));
        clear_modules(rt);
        keep_sigint(0);
        Py_FinalizeEx();
        keep_sigint(1);
        embedded_running = 0;
    } else {
        PyGILState_STATE gil = PyGILState_Ensure();
        Py_XDECREF(call_adapter(rt, rt->invocation, "stop", PyTuple_New(0), &res, &rc));
        clear_modules(rt);
        PyGILState_Release(gil);
    }
    host->free(res.error_message);
    host->free(res.error_stack);
    release(rt);
}

static const char *plugin_runtime_version(azf__py_runtime *rt)
{
    (void)rt;
    return Py_GetVersion();
}

static const char *plugin_executable(azf__py_runtime *rt)
{
    return rt->executable ? rt->executable : "";
}

/* A Python list of str as res->metadata (UTF-8 copies the core frees). 0 or AZF_E_NOMEM. */
static int take_strings(PyObject *list, azf__py_result *res)
{
    Py_ssize_t n = PyList_GET_SIZE(list);
    res->metadata = host->malloc(sizeof(char *) * (size_t)(n ? n : 1));
    for (Py_ssize_t i = 0; res->metadata && i < n; i++) {
        char *str = to_utf8(PyList_GET_ITEM(list, i));
        if (!str)
            break;
        res->metadata[res->count++] = str;
    }
    return (Py_ssize_t)res->count == n ? 0 : fail(res, AZF_E_NOMEM, "out of memory");
}

static int plugin_index(azf__py_runtime *rt, const char *app_dir, azf__py_result *res)
{
    int rc;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *list = call_adapter(rt, rt->indexing, "index",
                                  Py_BuildValue("(sz)", app_dir, rt->script_file_name), res, &rc);
    if (list == Py_None) {
        res->use_default = 1;
    } else if (list && PyList_Check(list)) {
        rc = take_strings(list, res);
    } else if (list) {
        rc = fail(res, AZF_E_INTERNAL, "the Python adapter returned a bad index");
    }
    Py_XDECREF(list);
    PyGILState_Release(gil);
    return rc;
}

static int plugin_load(azf__py_runtime *rt, const char *function_id, const char *metadata_json,
                       azf__py_result *res)
{
    int rc;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *r = call_adapter(rt, rt->indexing, "load",
                               Py_BuildValue("(ss)", function_id, metadata_json), res, &rc);
    Py_XDECREF(r);
    PyGILState_Release(gil);
    return rc;
}

static int plugin_invoke(azf__py_runtime *rt, azf_invocation *inv)
{
    return azf__py_invoke(rt, inv);
}

static int plugin_run(azf__py_runtime *rt, azf_invocation *inv)
{
    return azf__py_run(rt, inv);
}

static void plugin_cancel(azf__py_runtime *rt, azf_invocation *inv)
{
    azf__py_cancel(rt, inv);
}

static int plugin_drain(azf__py_runtime *rt, int timeout_ms)
{
    return azf__py_drain(rt, timeout_ms);
}

static int plugin_reload(azf__py_runtime *rt, const char *const *env, const char *app_dir,
                         azf__py_result *res)
{
    int rc = 0;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && env && env[i]; i += 2) {
        PyObject *v =
            PyUnicode_DecodeUTF8(env[i + 1], (Py_ssize_t)strlen(env[i + 1]), "surrogateescape");
        if (!v || PyDict_SetItemString(d, env[i], v) < 0)
            Py_CLEAR(d);
        Py_XDECREF(v);
    }
    if (!d) {
        PyErr_Clear();
        rc = fail(res, AZF_E_NOMEM, "out of memory");
    } else {
        /* The environment, sys.path and cwd first, then the settings read from it. */
        Py_XDECREF(call_adapter(rt, rt->indexing, "reload_environment",
                                Py_BuildValue("(Nz)", d, app_dir), res, &rc));
        if (rc == 0)
            Py_XDECREF(
                call_adapter(rt, rt->invocation, "apply_settings", PyTuple_New(0), res, &rc));
    }
    PyGILState_Release(gil);
    return rc;
}

/* startup.init_app: the capabilities come back as a flat list of strings. */
static int plugin_init_app(azf__py_runtime *rt, const char *app_dir, const char *http_host,
                           azf__py_result *res)
{
    int rc;
    PyGILState_STATE gil = PyGILState_Ensure();
    PyObject *list = call_adapter(rt, rt->startup, "init_app",
                                  Py_BuildValue("(zs)", app_dir, http_host), res, &rc);
    if (list && !PyList_Check(list)) {
        rc = fail(res, AZF_E_INTERNAL, "the Python adapter returned bad capabilities");
    } else if (list) {
        rc = take_strings(list, res);
    }
    Py_XDECREF(list);
    PyGILState_Release(gil);
    return rc;
}

static const azf__py_plugin table = {
    AZF__PY_ABI_VERSION,
    sizeof(azf__py_plugin),
    PY_VERSION,
    AZF_PYTHON_BUILD_HOME,
    plugin_open,
    plugin_close,
    plugin_runtime_version,
    plugin_executable,
    plugin_index,
    plugin_load,
    plugin_invoke,
    plugin_cancel,
    plugin_drain,
    plugin_reload,
    plugin_run,
    plugin_init_app,
};

/* The one exported symbol. NULL when the core speaks another ABI. */
__attribute__((visibility("default"))) const azf__py_plugin *
azf__python_plugin_v4(const azf__py_host *h)
{
    if (!h || h->abi_version != AZF__PY_ABI_VERSION || h->size < sizeof(azf__py_host))
        return NULL;
    host = h;
    return &table;
}
