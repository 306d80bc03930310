/* `azfunc start`: opening the app with the Python the rule picks, the lines that say
 * which Python, venv and libazfunc serve it, and a hint when Python is the problem. */
#include "host/runner_internal.h"

#include <stdio.h>
#include <string.h>

/* "3.12" from "3.12.1 (main, ...)"; "" when unknown. */
static void short_version(const char *full, char out[16])
{
    unsigned major, minor;
    out[0] = '\0';
    if (full && sscanf(full, "%u.%u", &major, &minor) == 2)
        snprintf(out, 16, "%u.%u", major, minor);
}

/* What to do about a failure, or NULL when the message says it all. version: the
 * Python that ran ("" when it did not start); venv: its venv or NULL. */
static const char *hint(const char *error, const char *version, const char *venv, char *buf,
                        size_t size)
{
    const char *py = *version ? version : "3.X";
    if (strstr(error, "has no libazfunc adapter")) {
        snprintf(buf, size,
                 "libazfunc builds an adapter for every CPython 3.10-3.13 with a shared "
                 "libpython it finds: install that Python and rebuild, or choose an "
                 "installed one with --python X.Y (or a venv made by it)");
    } else if (strstr(error, "virtual environment") && strstr(error, "does not exist")) {
        snprintf(buf, size,
                 "create it (python3.X -m venv DIR, then DIR/bin/python -m pip install -r "
                 "requirements.txt), or name another with --venv");
    } else if (strstr(error, "is not a virtual environment")) {
        snprintf(buf, size, "--venv names the directory that holds pyvenv.cfg and bin/python");
    } else if (strstr(error, "No module named 'azure.functions'") ||
               strstr(error, "No module named 'azure'")) {
        if (venv)
            snprintf(buf, size, "install it: %s/bin/python -m pip install azure-functions", venv);
        else
            snprintf(buf, size,
                     "give the app a venv with it: python%s -m venv .venv && "
                     ".venv/bin/python -m pip install azure-functions",
                     py);
    } else if (strstr(error, "ModuleNotFoundError")) {
        if (venv)
            snprintf(buf, size,
                     "install the app's requirements for Python %s: %s/bin/python -m pip "
                     "install -r requirements.txt",
                     py, venv);
        else
            snprintf(buf, size,
                     "the app has no venv: python%s -m venv .venv && .venv/bin/python -m pip "
                     "install -r requirements.txt",
                     py);
    } else {
        return NULL;
    }
    return buf;
}

/* Load and index failures, held back until the lines that say which Python runs. */
typedef struct held {
    struct report {
        const azf_function *fn;
        char *error;
    } * at;
    size_t count;
} held;

static void hold(const azf_function *fn, const char *error, void *user_data)
{
    held *h = user_data;
    struct report *at = azf__realloc(h->at, (h->count + 1) * sizeof *at);
    if (at) {
        h->at = at;
        if ((at[h->count].error = azf__strdup(error)))
            at[h->count++].fn = fn;
    }
}

/* Prints them (report != NULL) and frees them. */
static void release(held *h, azf__app_report_fn report)
{
    for (size_t i = 0; i < h->count; i++) {
        if (report)
            report(h->at[i].fn, h->at[i].error, NULL);
        azf__free(h->at[i].error);
    }
    azf__free(h->at);
}

int azf__runner_open_app(runner *r, azf__app_report_fn report)
{
    held reports = {NULL, 0};
    const azf__runner_opts *o = r->o;
    azf_python_opts *popts = NULL;
    int rc = azf_python_opts_new(&popts);
    if (rc == 0)
        rc = azf_python_opts_set_log_callback(popts, azf__on_python_log, r);
    if (rc == 0 && o->python && strchr(o->python, '/'))
        rc = azf_python_opts_set_interpreter(popts, o->python);
    else if (rc == 0 && o->python)
        rc = azf_python_opts_set_version(popts, o->python);
    if (rc == 0 && o->venv)
        rc = azf_python_opts_set_venv(popts, o->venv);
    if (rc == AZF_E_INVALID) {
        fprintf(stderr, "azfunc start: invalid --python value '%s'\n", o->python);
        azf_python_opts_free(popts);
        return rc;
    }
    if (rc == 0)
        rc = azf__app_open(&r->app, o->dir, popts, hold, &reports);
    char buf[512];
    if (rc != 0) {
        release(&reports, NULL);
        const char *why =
            *azf_python_opts_errmsg(popts) ? azf_python_opts_errmsg(popts) : azf_strerror(rc);
        const char *h = hint(why, "", NULL, buf, sizeof buf);
        fprintf(stderr, "azfunc start: cannot open the function app in %s: %s\n%s%s%s", o->dir, why,
                h ? "hint: " : "", h ? h : "", h ? "\n" : "");
        azf_python_opts_free(popts);
        return rc;
    }
    azf_python_opts_free(popts);

    azf_python *py = azf_app_python(r->app);
    const char *venv = azf_python_venv(py), *full = azf_python_version(py);
    char version[16];
    short_version(full, version);
    say(C_NONE, "Python %.*s (%s)", (int)strcspn(full ? full : "", " "), full ? full : "",
        azf_python_executable(py));
    say(C_NONE, "Virtual environment: %s", venv ? venv : "none");
    say(C_NONE, "libazfunc %s, adapter %s", azf_version(), azf_python_plugin_path(py));
    release(&reports, report);
    const char *error = azf_app_errmsg(r->app);
    if (azf_app_function_count(r->app) == 0 && *error) {
        const char *h = hint(error, version, venv, buf, sizeof buf);
        if (h)
            say(C_YELLOW, "hint: %s", h);
    }
    return 0;
}
