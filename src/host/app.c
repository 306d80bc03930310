/* The in-process API for custom hosts (host.h): an app is a registry plus, for a
 * Python app, the runtime whose handler runs its functions. */
#include "host/host_internal.h"
#include "python/loader_internal.h"
#include "registry/registry_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

struct azf_app {
    azf_registry *reg;
    azf_python *py;
    char *dir;
    azf__errmsg err;
};

/* The metadata azf_python_load wants for a v1 function, built from the registry. */
static char *v1_load_metadata(const azf_function *fn)
{
    cJSON *root = cJSON_CreateObject(), *b = cJSON_AddArrayToObject(root, "bindings");
    cJSON_AddStringToObject(root, "name", azf_function_name(fn));
    cJSON_AddStringToObject(root, "directory", azf_function_directory(fn));
    cJSON_AddStringToObject(root, "scriptFile", azf_function_script_file(fn));
    if (*azf_function_entry_point(fn))
        cJSON_AddStringToObject(root, "entryPoint", azf_function_entry_point(fn));
    for (size_t i = 0; i < azf_function_binding_count(fn); i++)
        cJSON_AddItemToArray(b, cJSON_Parse(azf_binding_json(azf_function_binding(fn, i))));
    char *s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    return s;
}

/* The host's function filter as Core Tools' --functions passes it, in the environment
 * (AzureFunctionsJobHost__functions__0..N; host.json's own "functions" is not read): when
 * given, only the functions it names, compared without case, are indexed. */
static int wanted(const azf_function *fn)
{
    char var[64];
    const char *v;
    int i = 0;
    for (; snprintf(var, sizeof var, "AzureFunctionsJobHost__functions__%d", i),
           (v = getenv(var)) != NULL;
         i++)
        if (strcasecmp(v, azf_function_name(fn)) == 0)
            return 1;
    return i == 0;
}

/* v2: each function of the index on its own, so one that the registry refuses (a bad
 * route template, say) is listed as failed with the reason and the others still run. */
static int register_v2(azf_app *app, const azf_python_index *idx, azf__app_report_fn report,
                       void *user_data)
{
    for (size_t i = 0; i < azf_python_index_count(idx); i++) {
        const char *meta = azf_python_index_metadata(idx, i);
        int rc = azf_registry_add(app->reg, meta, azf_python_handler(app->py), app->py);
        if (rc != AZF_E_PARSE) {
            if (rc < 0)
                return azf__err(&app->err, rc, "%s", azf_registry_errmsg(app->reg));
            continue;
        }
        cJSON *m = cJSON_Parse(meta);
        const cJSON *name = cJSON_GetObjectItemCaseSensitive(m, "name");
        const cJSON *dir = cJSON_GetObjectItemCaseSensitive(m, "directory");
        azf_function *fn = NULL;
        rc = cJSON_IsString(name)
                 ? azf__function_failed(name->valuestring,
                                        cJSON_IsString(dir) ? dir->valuestring : app->dir,
                                        azf_registry_errmsg(app->reg), &fn)
                 : azf__err(&app->err, AZF_E_PARSE, "%s", azf_registry_errmsg(app->reg));
        cJSON_Delete(m);
        if (rc == 0 && (rc = azf__registry_insert(app->reg, fn, NULL, NULL)) != 0)
            azf__function_free(fn);
        if (rc != 0)
            return rc == AZF_E_NOMEM ? azf__err(&app->err, rc, "out of memory") : rc;
    }
    azf__registry_retain(app->reg, wanted);
    for (size_t i = 0; report && i < azf_registry_count(app->reg); i++) {
        const azf_function *fn = azf_registry_at(app->reg, i);
        if (azf_function_load_error(fn))
            report(fn, azf_function_load_error(fn), user_data);
    }
    return 0;
}

/* v1: every function.json folder, loaded into Python under its own name as id. A
 * function that fails to load stays listed; its error is reported through `report`. */
static int open_v1(azf_app *app, azf__app_report_fn report, void *user_data)
{
    int n = azf_registry_load_v1(app->reg, app->dir, azf_python_handler(app->py), app->py);
    if (n < 0)
        return azf__err(&app->err, n, "%s: %s", app->dir, azf_registry_errmsg(app->reg));
    azf__registry_retain(app->reg, wanted);
    for (size_t i = 0; i < azf_registry_count(app->reg); i++) {
        const azf_function *fn = azf_registry_at(app->reg, i);
        if (azf_function_load_error(fn)) {
            if (report)
                report(fn, azf_function_load_error(fn), user_data);
            continue;
        }
        if (!*azf_function_id(fn))
            azf_registry_bind_id(app->reg, azf_function_name(fn), azf_function_name(fn));
        char *meta = v1_load_metadata(fn);
        int rc = meta ? azf_python_load(app->py, azf_function_id(fn), meta) : AZF_E_NOMEM;
        cJSON_free(meta);
        if (rc != 0 && report)
            report(fn, azf_python_errmsg(app->py), user_data);
    }
    return 0;
}

/* A failure before the app handle exists: to the options (the caller's channel)
 * and to the library log. */
static int open_failed(azf_python_opts *py_opts, int rc, const char *fmt, const char *arg)
{
    azf__errmsg e = {{0}};
    azf__err(&e, rc, fmt, arg);
    azf__python_opts_set_error(py_opts, e.text);
    azf__log(AZF_LOG_ERROR, "%s", e.text);
    return rc;
}

int azf__app_open(azf_app **out, const char *app_dir, azf_python_opts *py_opts,
                  azf__app_report_fn report, void *user_data)
{
    struct stat st;
    if (!out || !app_dir)
        return AZF_E_INVALID;
    azf__python_opts_set_error(py_opts, "");
    if (stat(app_dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return open_failed(py_opts, AZF_E_IO, "%s: not a readable directory", app_dir);
    azf_app *app = azf__calloc(1, sizeof *app);
    if (!app || !(app->dir = azf__strdup(app_dir)) || azf_registry_new(&app->reg) != 0) {
        azf_app_free(app);
        return open_failed(py_opts, AZF_E_NOMEM, "%s", "out of memory");
    }
    int rc = azf__python_new_for_app(&app->py, py_opts, app_dir);
    if (rc == 0 && (rc = azf_python_start(app->py)) != 0)
        open_failed(py_opts, rc, "cannot start Python: %s", azf_python_errmsg(app->py));
    else if (rc != 0)
        open_failed(py_opts, rc, "%s", "out of memory");
    if (rc != 0) {
        azf_app_free(app);
        return rc;
    }
    azf_python_index *idx = NULL;
    rc = azf_python_index_app(app->py, app->dir, &idx);
    if (rc == AZF_E_PYTHON) {
        /* As the host: an app whose indexing raises has no functions. */
        const azf_python_error *e = azf_python_last_error(app->py);
        azf__err(&app->err, rc, "%s", e ? azf_python_error_message(e) : azf_python_errmsg(app->py));
        if (report)
            report(NULL, azf_app_errmsg(app), user_data);
        rc = 0;
    } else if (rc == 0 && azf_python_index_use_default(idx)) {
        rc = open_v1(app, report, user_data);
    } else if (rc == 0) {
        rc = register_v2(app, idx, report, user_data);
    }
    azf_python_index_free(idx);
    if (rc != 0) {
        azf__log(AZF_LOG_ERROR, "%s", azf_app_errmsg(app));
        azf_app_free(app);
        return rc;
    }
    *out = app;
    return 0;
}

int azf_app_open(azf_app **out, const char *app_dir, azf_python_opts *py_opts)
{
    return azf__app_open(out, app_dir, py_opts, NULL, NULL);
}

int azf_app_open_registry(azf_app **out, azf_registry *reg)
{
    if (!out || !reg)
        return AZF_E_INVALID;
    azf_app *app = azf__calloc(1, sizeof *app);
    if (!app)
        return AZF_E_NOMEM;
    app->reg = reg;
    *out = app;
    return 0;
}

void azf_app_free(azf_app *app)
{
    azf__app_close(app, 10000);
}

void azf__app_close(azf_app *app, int64_t drain_ms)
{
    if (!app)
        return;
    if (app->py && azf_python_plugin_path(app->py))
        azf_python_drain(app->py, drain_ms);
    azf_registry_free(app->reg);
    azf_python_free(app->py);
    azf__free(app->dir);
    azf__free(app);
}

const char *azf_app_errmsg(const azf_app *app)
{
    return app ? app->err.text : "invalid argument";
}

azf_registry *azf_app_registry(const azf_app *app)
{
    return app ? app->reg : NULL;
}

size_t azf_app_function_count(const azf_app *app)
{
    return app ? azf_registry_count(app->reg) : 0;
}

const azf_function *azf_app_function_at(const azf_app *app, size_t i)
{
    return app ? azf_registry_at(app->reg, i) : NULL;
}

const azf_function *azf_app_find(const azf_app *app, const char *name)
{
    return app && name ? azf_registry_find(app->reg, name) : NULL;
}

azf_python *azf_app_python(const azf_app *app)
{
    return app ? app->py : NULL;
}

/* ---- the blocking helper ----------------------------------------------------------
 * The waiter is shared by the caller and the completion callback, so a caller that
 * gives up after a timeout leaves it to the callback to free. */
typedef struct waiter {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int done, refs;
} waiter;

static void waiter_release(waiter *w)
{
    pthread_mutex_lock(&w->mu);
    int last = --w->refs == 0;
    pthread_mutex_unlock(&w->mu);
    if (last) {
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        azf__free(w);
    }
}

static void on_done(azf_invocation *inv, void *user_data)
{
    (void)inv;
    waiter *w = user_data;
    pthread_mutex_lock(&w->mu);
    w->done = 1;
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
    waiter_release(w);
}

/* Waits until done or the deadline; 1 when done. */
static int wait_until(waiter *w, int64_t timeout_ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    if (timeout_ms >= 0) {
        dl.tv_sec += timeout_ms / 1000;
        dl.tv_nsec += (timeout_ms % 1000) * 1000000;
        if (dl.tv_nsec >= 1000000000)
            dl.tv_sec++, dl.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    while (!w->done && rc != ETIMEDOUT)
        rc = timeout_ms < 0 ? pthread_cond_wait(&w->cv, &w->mu)
                            : pthread_cond_timedwait(&w->cv, &w->mu, &dl);
    int done = w->done;
    pthread_mutex_unlock(&w->mu);
    return done;
}

int azf_app_run(azf_app *app, azf_invocation *inv, int64_t timeout_ms)
{
    if (!app || !inv)
        return AZF_E_INVALID;
    if (azf_invocation_status(inv) != AZF_INVOCATION_NEW)
        return AZF_E_STATE;
    waiter *w = azf__calloc(1, sizeof *w);
    if (!w)
        return AZF_E_NOMEM;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->refs = 2;
    int rc = azf_invocation_set_on_complete(inv, on_done, w);
    if (rc == 0)
        rc = azf_invocation_start(inv);
    if (rc != 0) {
        w->refs = 1; /* the callback will never run */
        waiter_release(w);
        return rc;
    }
    int done = wait_until(w, timeout_ms);
    if (!done) {
        azf_invocation_cancel(inv);
        done = wait_until(w, timeout_ms);
    }
    waiter_release(w);
    return done ? 0 : AZF_E_TIMEOUT;
}
