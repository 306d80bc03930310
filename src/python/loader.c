/* The core side of the Python adapter: finds libazfunc-python3.X.so, dlopens
 * it, checks its ABI and forwards the public azf_python_* calls to it.
 * libazfunc itself never links libpython. */
#include "azfunc/python.h"
#include "common/common_internal.h"
#include "python/discover.h"
#include "python/loader_internal.h"
#include "python/plugin_abi.h"

#include <dirent.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef AZF_PYTHON_DEFAULT_VERSION
#error "AZF_PYTHON_DEFAULT_VERSION must be set by the build"
#endif
#ifndef AZF_INSTALL_LIBDIR
#error "AZF_INSTALL_LIBDIR must be set by the build"
#endif
#ifndef AZF_INSTALL_LIBDIR_REL /* the libdir relative to the prefix ("lib") */
#define AZF_INSTALL_LIBDIR_REL "lib"
#endif

struct azf_python_opts {
    int mode;
    char *version;
    char *interpreter;
    char *plugin_path;
    char *venv;
    char *app_dir;
    char *script_file_name;
    azf_python_log_fn log;
    void *log_user_data;
    azf__errmsg err; /* why the last azf_app_open with these options failed */
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
    char *venv; /* the venv in use, or NULL */
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
    azf__free(o->interpreter);
    azf__free(o->plugin_path);
    azf__free(o->venv);
    azf__free(o->app_dir);
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

int azf_python_opts_set_interpreter(azf_python_opts *opts, const char *path)
{
    return opts && (!path || *path) ? set_str(&opts->interpreter, path) : AZF_E_INVALID;
}

int azf_python_opts_set_app_dir(azf_python_opts *opts, const char *app_dir)
{
    return opts && (!app_dir || *app_dir) ? set_str(&opts->app_dir, app_dir) : AZF_E_INVALID;
}

const char *azf_python_opts_errmsg(const azf_python_opts *opts)
{
    return opts ? opts->err.text : "invalid handle";
}

void azf__python_opts_set_error(azf_python_opts *opts, const char *message)
{
    if (opts)
        azf__err(&opts->err, AZF_E_INTERNAL, "%s", message);
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
        set_str(&dst->venv, src->venv) || set_str(&dst->script_file_name, src->script_file_name) ||
        set_str(&dst->interpreter, src->interpreter) || set_str(&dst->app_dir, src->app_dir))
        return AZF_E_NOMEM;
    return 0;
}

int azf__python_new_for_app(azf_python **out, const azf_python_opts *opts, const char *app_dir)
{
    int rc = azf_python_new(out, opts);
    if (rc == 0 && !(*out)->opts.app_dir && app_dir &&
        (rc = set_str(&(*out)->opts.app_dir, app_dir)) != 0) {
        azf_python_free(*out);
        *out = NULL;
    }
    return rc;
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
    azf__free(py->venv);
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

const char *azf_python_executable(const azf_python *py)
{
    return py && py->rt ? py->plugin->executable(py->rt) : NULL;
}

const char *azf_python_venv(const azf_python *py)
{
    return py && py->rt ? py->venv : NULL;
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

/* Where plugins and the bundled site-packages are looked for, each with a trailing
 * slash: next to libazfunc; <that>/../<libdir>/ (an installed azfunc executable links
 * the core statically, in bin/); <that>/../; the configured libdir. NULL entries are
 * skipped. */
enum { NDIRS = 4 };
static void search_dirs(char *dirs[NDIRS])
{
    dirs[0] = own_dir();
    dirs[1] = dirs[0] ? azf__asprintf("%s../%s/", dirs[0], AZF_INSTALL_LIBDIR_REL) : NULL;
    dirs[2] = dirs[0] ? azf__asprintf("%s../", dirs[0]) : NULL; /* a build tree's bin/ */
    dirs[3] = azf__strdup(AZF_INSTALL_LIBDIR "/");
}

static void free_dirs(char *dirs[NDIRS])
{
    for (int i = 0; i < NDIRS; i++)
        azf__free(dirs[i]);
}

/* The first existing "<dir><name>", or NULL. */
static char *find_in(char *dirs[NDIRS], const char *name, int want_dir)
{
    for (int i = 0; i < NDIRS; i++) {
        char *file = dirs[i] ? azf__asprintf("%s%s", dirs[i], name) : NULL;
        DIR *d = file && want_dir ? opendir(file) : NULL;
        if (d)
            closedir(d);
        if (file && (want_dir ? d != NULL : access(file, R_OK) == 0))
            return file;
        azf__free(file);
    }
    return NULL;
}

/* "3.10, 3.11": the adapters installed in dirs (for error messages). */
static void list_adapters(char *dirs[NDIRS], char *out, size_t size)
{
    char seen[16][16];
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < NDIRS; i++) {
        DIR *d = dirs[i] ? opendir(dirs[i]) : NULL;
        for (struct dirent *e; d && (e = readdir(d));) {
            const char *p = "libazfunc-python";
            size_t plen = strlen(p), len = strlen(e->d_name);
            if (strncmp(e->d_name, p, plen) != 0 || len < plen + 4 || len - plen - 3 >= 16 ||
                strcmp(e->d_name + len - 3, ".so") != 0)
                continue;
            char v[16];
            snprintf(v, sizeof v, "%.*s", (int)(len - plen - 3), e->d_name + plen);
            int dup = 0;
            for (size_t k = 0; k < n; k++)
                dup |= strcmp(seen[k], v) == 0;
            if (!dup && n < 16)
                snprintf(seen[n++], 16, "%s", v);
        }
        if (d)
            closedir(d);
    }
    for (size_t i = 0; i < n; i++) /* a few entries: insertion order is fine, sort them */
        for (size_t k = i + 1; k < n; k++)
            if (strverscmp(seen[k], seen[i]) < 0) {
                char t[16];
                memcpy(t, seen[i], 16);
                memcpy(seen[i], seen[k], 16);
                memcpy(seen[k], t, 16);
            }
    for (size_t i = 0; i < n; i++)
        snprintf(out + strlen(out), size - strlen(out), "%s%s", i ? ", " : "", seen[i]);
    if (!n)
        snprintf(out, size, "none");
}

/* The adapter for one Python version; AZF_E_NOTFOUND names the versions there are. */
static int find_plugin(azf_python *py, const azf__py_choice *c, char **out)
{
    char *dirs[NDIRS], *name = azf__asprintf("libazfunc-python%s.so", c->version);
    search_dirs(dirs);
    *out = name ? find_in(dirs, name, 0) : NULL;
    int rc = 0;
    if (!name) {
        rc = azf__err(&py->errmsg, AZF_E_NOMEM, "out of memory");
    } else if (!*out) {
        char have[128];
        list_adapters(dirs, have, sizeof have);
        rc = azf__err(&py->errmsg, AZF_E_NOTFOUND,
                      "Python %s (%s) has no libazfunc adapter: there is no %s (adapters "
                      "installed: %s)",
                      c->version, c->source, name, have);
    }
    azf__free(name);
    free_dirs(dirs);
    return rc;
}

static int load_plugin(azf_python *py, char *file)
{
    int rc;
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

/* The installation whose libpython serves each X.Y in this process: a libpython
 * cannot be unloaded, and a second one of the same soname cannot be loaded. */
static pthread_mutex_t loaded_mu = PTHREAD_MUTEX_INITIALIZER;
static struct {
    char version[16];
    char *prefix;
} loaded[8];

static char *loaded_prefix(const char *version)
{
    for (size_t i = 0; i < sizeof loaded / sizeof loaded[0]; i++)
        if (strcmp(loaded[i].version, version) == 0)
            return loaded[i].prefix;
    return NULL;
}

static void remember_prefix(const char *version, const char *prefix)
{
    for (size_t i = 0; i < sizeof loaded / sizeof loaded[0]; i++)
        if (!loaded[i].version[0]) {
            if ((loaded[i].prefix = azf__strdup(prefix)))
                snprintf(loaded[i].version, sizeof loaded[i].version, "%s", version);
            return;
        }
}

/* Loads the plugin for the chosen Python, its installation's libpython first (the
 * plugin's libpython3.X.so.1.0 dependency then binds to it by soname). *home: the
 * installation whose standard library goes with that libpython. */
static int load_for(azf_python *py, const azf__py_choice *c, const char **home)
{
    char *file = NULL;
    const char *explicit_plugin = py->opts.plugin_path;
    if (!explicit_plugin && !py->opts.version && !py->opts.interpreter) {
        const char *env = getenv("AZF_PYTHON_PLUGIN");
        explicit_plugin = env && *env ? env : NULL;
    }
    int rc = 0;
    if (explicit_plugin)
        file = azf__strdup(explicit_plugin);
    else
        rc = find_plugin(py, c, &file);
    if (rc == 0 && !file)
        rc = azf__err(&py->errmsg, AZF_E_NOMEM, "out of memory");
    if (rc)
        return rc;
    pthread_mutex_lock(&loaded_mu);
    const char *prior = loaded_prefix(c->version);
    if (prior && c->prefix && !explicit_plugin && strcmp(prior, c->prefix) != 0) {
        rc = azf__err(&py->errmsg, AZF_E_STATE,
                      "Python %s of %s is already loaded in this process, so %s (%s) cannot "
                      "run in it too",
                      c->version, prior, c->prefix, c->source);
        azf__free(file);
    } else if (!prior && c->libpython && !explicit_plugin &&
               !dlopen(c->libpython, RTLD_NOW | RTLD_GLOBAL)) {
        rc = azf__err(&py->errmsg, AZF_E_LOAD, "cannot load %s (%s): %s", c->libpython, c->source,
                      dlerror());
        azf__free(file);
    } else if ((rc = load_plugin(py, file)) == 0) {
        if (explicit_plugin)
            *home = py->plugin->home;
        else if (prior)
            *home = prior;
        else
            *home = c->libpython ? c->prefix : py->plugin->home;
        if (!prior && !explicit_plugin)
            remember_prefix(c->version, *home);
    }
    pthread_mutex_unlock(&loaded_mu);
    return rc;
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

/* libazfunc's own site-packages for one Python (the pinned azure-functions that
 * `cmake --install` puts there), or NULL. */
static char *find_bundled(const char *version)
{
    char *dirs[NDIRS], *name = azf__asprintf("azfunc/python%s/site-packages", version);
    search_dirs(dirs);
    char *found = name ? find_in(dirs, name, 1) : NULL;
    azf__free(name);
    free_dirs(dirs);
    return found;
}

/* PYTHONPATH as a NULL-terminated list (one allocation), or NULL when unset. */
static char **split_pythonpath(void)
{
    const char *env = getenv("PYTHONPATH");
    if (!env || !*env)
        return NULL;
    size_t n = 2, len = strlen(env);
    for (const char *p = env; *p; p++)
        n += *p == ':';
    char **list = azf__malloc(n * sizeof *list + len + 1);
    if (!list)
        return NULL;
    char *text = memcpy((char *)(list + n), env, len + 1);
    size_t k = 0;
    for (char *tok = strtok(text, ":"); tok; tok = strtok(NULL, ":"))
        list[k++] = tok;
    list[k] = NULL;
    return list;
}

int azf_python_start(azf_python *py)
{
    if (!py)
        return AZF_E_INVALID;
    error_clear(py);
    if (py->rt)
        return azf__err(&py->errmsg, AZF_E_STATE, "the Python runtime is already started");
    azf__py_choice c;
    memset(&c, 0, sizeof c);
    const char *home = NULL;
    int rc = 0;
    if (py->opts.mode == AZF_PYTHON_EXTENSION) {
        /* The running interpreter is the Python: nothing to choose but its plugin. */
        const char *path =
            py->opts.plugin_path ? py->opts.plugin_path : getenv("AZF_PYTHON_PLUGIN");
        char *file = NULL;
        snprintf(c.version, sizeof c.version, "%s",
                 py->opts.version ? py->opts.version : AZF_PYTHON_DEFAULT_VERSION);
        c.source = azf__strdup("extension mode");
        if (!py->plugin && path && *path && !(file = azf__strdup(path)))
            rc = azf__err(&py->errmsg, AZF_E_NOMEM, "out of memory");
        else if (!py->plugin && !file)
            rc = find_plugin(py, &c, &file);
        if (rc == 0 && !py->plugin)
            rc = load_plugin(py, file);
        azf__py_choice_clear(&c);
        if (rc)
            return rc;
    } else {
        const char *version = py->opts.version;
        const char *env_plugin = getenv("AZF_PYTHON_PLUGIN"),
                   *env_version = getenv("AZF_PYTHON_VERSION");
        if (!version && !py->opts.interpreter && !py->opts.plugin_path &&
            !(env_plugin && *env_plugin) && env_version && *env_version)
            version = env_version;
        azf__py_wish wish = {py->opts.interpreter, version,
                             version == env_version ? "AZF_PYTHON_VERSION" : "the version option",
                             py->opts.venv, py->opts.app_dir};
        if ((rc = azf__py_choose(&c, &wish, AZF_PYTHON_DEFAULT_VERSION, &py->errmsg)) != 0)
            return rc;
        if (py->plugin)
            home = py->plugin->home; /* a second start of the same handle */
        else if ((rc = load_for(py, &c, &home)) != 0)
            goto out;
        /* An explicit plugin file decides the version: a venv must match it. */
        char pv[16] = "";
        unsigned major = 0, minor = 0;
        if (sscanf(py->plugin->python_version, "%u.%u", &major, &minor) == 2)
            snprintf(pv, sizeof pv, "%u.%u", major, minor);
        if (strcmp(pv, c.version) != 0 && c.venv) {
            rc = azf__err(&py->errmsg, AZF_E_INVALID,
                          "the virtual environment %s (from %s) is Python %s, but the Python "
                          "adapter %s is for Python %s",
                          c.venv, c.venv_source, c.version, py->plugin_file, pv);
            goto out;
        }
        if (strcmp(pv, c.version) != 0) { /* no venv: the plugin's own installation */
            azf__free(c.executable);
            c.executable = NULL;
            snprintf(c.version, sizeof c.version, "%s", pv);
        }
    }
    char *bundled = c.version[0] ? find_bundled(c.version) : NULL;
    char *own_exe = NULL;
    if (!c.executable && home && *home) {
        own_exe = azf__asprintf("%s/bin/python%s", home, c.version);
        if (own_exe && access(own_exe, X_OK) != 0) {
            azf__free(own_exe);
            own_exe = NULL;
        }
    }
    char **pythonpath = py->opts.mode == AZF_PYTHON_EMBEDDED ? split_pythonpath() : NULL;
    azf__py_config cfg = {py->opts.mode,
                          home,
                          c.executable ? c.executable : own_exe,
                          (const char *const *)pythonpath,
                          py->opts.app_dir,
                          c.venv,
                          bundled,
                          py->opts.script_file_name,
                          py->opts.log,
                          py->opts.log_user_data};
    azf__py_result res = {0};
    rc = py->plugin->open(&py->rt, &cfg, &res);
    if (rc < 0)
        take_error(py, rc, &res);
    result_free(&res);
    azf__free(bundled);
    azf__free(own_exe);
    azf__free(pythonpath);
    if (rc == 0 && c.venv) {
        py->venv = c.venv;
        c.venv = NULL;
    }
out:
    azf__py_choice_clear(&c);
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
