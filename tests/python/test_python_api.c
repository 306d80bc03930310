/* The public azf_python API outside the app corpus: options, plugin
 * discovery and its errors, lifecycle states, errors before start. */
#include "azfunc/host.h"
#include "azfunc/python.h"
#include "azf_test.h"

#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static azf_python *make(const char *version, const char *plugin)
{
    azf_python_opts *o;
    azf_python *py = NULL;
    CHECK_INT(azf_python_opts_new(&o), 0);
    if (version)
        CHECK_INT(azf_python_opts_set_version(o, version), 0);
    if (plugin)
        CHECK_INT(azf_python_opts_set_plugin_path(o, plugin), 0);
    /* The test venv is one Python's: it applies when no other version is asked for. */
    if (!version && !plugin && !getenv("AZF_PYTHON_VERSION"))
        CHECK_INT(azf_python_opts_set_venv(o, getenv("AZF_TEST_VENV")), 0);
    CHECK_INT(azf_python_new(&py, o), 0);
    azf_python_opts_free(o);
    return py;
}

static void test_options(void)
{
    azf_python_opts *o;
    CHECK_INT(azf_python_opts_new(NULL), AZF_E_INVALID);
    CHECK_INT(azf_python_opts_new(&o), 0);
    CHECK_INT(azf_python_opts_set_mode(o, 7), AZF_E_INVALID);
    CHECK_INT(azf_python_opts_set_mode(o, AZF_PYTHON_EXTENSION), 0);
    CHECK_INT(azf_python_opts_set_version(o, "3.x/../evil"), AZF_E_INVALID);
    CHECK_INT(azf_python_opts_set_version(o, ""), AZF_E_INVALID);
    CHECK_INT(azf_python_opts_set_version(o, "3.12"), 0);
    CHECK_INT(azf_python_opts_set_version(o, NULL), 0);
    CHECK_INT(azf_python_opts_set_script_file_name(o, "app.py"), 0);
    CHECK_INT(azf_python_opts_set_venv(NULL, "x"), AZF_E_INVALID);
    azf_python_opts_free(o);
    azf_python_opts_free(NULL);
    azf_python_free(NULL);
    CHECK_INT(azf_python_new(NULL, NULL), AZF_E_INVALID);
}

static void test_not_started(void)
{
    azf_python *py = make(NULL, NULL);
    azf_python_index *idx = NULL;
    CHECK_INT(azf_python_index_app(py, "/tmp", &idx), AZF_E_STATE);
    CHECK(idx == NULL);
    CHECK(strstr(azf_python_errmsg(py), "not started") != NULL);
    CHECK_INT(azf_python_load(py, "id", "{}"), AZF_E_STATE);
    CHECK(azf_python_last_error(py) == NULL);
    CHECK(azf_python_version(py) == NULL);
    CHECK(azf_python_plugin_path(py) == NULL);
    CHECK_INT(azf_python_index_app(py, NULL, &idx), AZF_E_INVALID);
    azf_python_free(py);
}

static void test_plugin_errors(void)
{
    /* No plugin for that version. */
    azf_python *py = make("2.9", NULL);
    CHECK_INT(azf_python_start(py), AZF_E_NOTFOUND);
    CHECK(strstr(azf_python_errmsg(py), "libazfunc-python2.9.so") != NULL);
    azf_python_free(py);

    /* A path that does not exist. */
    py = make(NULL, "/nonexistent/libazfunc-python3.99.so");
    CHECK_INT(azf_python_start(py), AZF_E_NOTFOUND);
    CHECK(strstr(azf_python_errmsg(py), "/nonexistent/") != NULL);
    azf_python_free(py);

    /* A shared object without the entry point: libazfunc itself. */
    char self[PATH_MAX];
    snprintf(self, sizeof self, "%s/libazfunc.so", getenv("AZF_BINARY_DIR"));
    py = make(NULL, self);
    CHECK_INT(azf_python_start(py), AZF_E_LOAD);
    CHECK(strstr(azf_python_errmsg(py), "not a compatible Python adapter") != NULL);
    azf_python_free(py);

    /* The environment picks the plugin when no option does. */
    setenv("AZF_PYTHON_VERSION", "2.8", 1);
    py = make(NULL, NULL);
    CHECK_INT(azf_python_start(py), AZF_E_NOTFOUND);
    CHECK(strstr(azf_python_errmsg(py), "libazfunc-python2.8.so") != NULL);
    azf_python_free(py);
    setenv("AZF_PYTHON_PLUGIN", "/nonexistent/plugin.so", 1);
    py = make(NULL, NULL);
    CHECK_INT(azf_python_start(py), AZF_E_NOTFOUND);
    CHECK(strstr(azf_python_errmsg(py), "/nonexistent/plugin.so") != NULL);
    azf_python_free(py);
    unsetenv("AZF_PYTHON_PLUGIN");
    unsetenv("AZF_PYTHON_VERSION");
}

static int sigint_is_default(void)
{
    struct sigaction now;
    sigaction(SIGINT, NULL, &now);
    return now.sa_handler == SIG_DFL;
}

static void test_lifecycle(void)
{
    /* Python must not take SIGINT (Ctrl-C would stop killing the host), and
     * must not reset it when it finalises. */
    signal(SIGINT, SIG_DFL);

    /* The default plugin, found next to libazfunc.so. */
    azf_python *py = make(NULL, NULL);
    CHECK_INT(azf_python_start(py), 0);
    CHECK(sigint_is_default());
    CHECK(strstr(azf_python_plugin_path(py), "libazfunc-python3.") != NULL);
    CHECK(azf_python_version(py) != NULL && azf_python_version(py)[0] == '3');
    CHECK_INT(azf_python_start(py), AZF_E_STATE);

    /* One embedded interpreter per process. */
    azf_python *other = make(NULL, NULL);
    CHECK_INT(azf_python_start(other), AZF_E_STATE);
    CHECK(strstr(azf_python_errmsg(other), "already running") != NULL);
    azf_python_free(other);

    /* Bad input to load is a Python error, never a crash. */
    CHECK_INT(azf_python_load(py, "id", "not json"), AZF_E_PYTHON);
    CHECK(strncmp(azf_python_errmsg(py), "JSONDecodeError: ", 17) == 0);
    CHECK_INT(azf_python_load(py, "id", "{\"name\": \"f\", \"directory\": \"/nonexistent/f\"}"),
              AZF_E_PYTHON);
    CHECK(strstr(azf_python_errmsg(py), "ModuleNotFoundError: No module named '__app__.f'") !=
          NULL);
    azf_python_free(py);
    CHECK(sigint_is_default());

    /* Extension mode needs a running interpreter; there is none now. */
    azf_python_opts *o;
    CHECK_INT(azf_python_opts_new(&o), 0);
    CHECK_INT(azf_python_opts_set_mode(o, AZF_PYTHON_EXTENSION), 0);
    CHECK_INT(azf_python_new(&py, o), 0);
    azf_python_opts_free(o);
    CHECK_INT(azf_python_start(py), AZF_E_STATE);
    azf_python_free(py);
}

/* Index and load on another thread than the one that started the runtime:
 * the GIL is taken per call (pool threads will invoke functions later). */
static void *other_thread(void *arg)
{
    azf_python *py = arg;
    char app[PATH_MAX], meta[PATH_MAX * 2];
    snprintf(app, sizeof app, "%s/tests/apps/v1_app", getenv("AZF_SOURCE_DIR"));
    azf_python_index *idx = NULL;
    CHECK_INT(azf_python_index_app(py, app, &idx), 0);
    CHECK_INT(azf_python_index_use_default(idx), 1);
    azf_python_index_free(idx);
    snprintf(meta, sizeof meta,
             "{\"name\": \"Untyped\", \"directory\": \"%s/Untyped\", \"bindings\": "
             "[{\"name\": \"req\", \"type\": \"httpTrigger\", \"direction\": \"in\"}, "
             "{\"name\": \"row\", \"type\": \"table\", \"direction\": \"in\"}]}",
             app);
    CHECK_INT(azf_python_load(py, "untyped-id", meta), 0);
    return NULL;
}

static void test_threads(void)
{
    azf_python *py = make(NULL, NULL);
    CHECK_INT(azf_python_start(py), 0);
    pthread_t t;
    CHECK_INT(pthread_create(&t, NULL, other_thread, py), 0);
    pthread_join(t, NULL);
    CHECK_INT(azf_python_load(py, "untyped-id", "{}"), 0); /* known id: done at once */
    azf_python_free(py);
}

/* azf_app_open fails before its handle exists: the options carry the reason. */
static void test_app_open_error(void)
{
    azf_python_opts *o;
    azf_app *app = NULL;
    CHECK_INT(azf_python_opts_new(&o), 0);
    CHECK_STR(azf_python_opts_errmsg(o), "");
    CHECK_INT(azf_python_opts_set_venv(o, "/nonexistent-venv"), 0);
    CHECK_INT(azf_app_open(&app, "/", o), AZF_E_NOTFOUND);
    CHECK(app == NULL);
    CHECK_STR(azf_python_opts_errmsg(o), "cannot start Python: the virtual environment "
                                         "/nonexistent-venv (from the venv option) does not exist");
    CHECK_INT(azf_python_opts_set_venv(o, NULL), 0);
    CHECK_INT(azf_python_opts_set_version(o, "3.99"), 0);
    CHECK_INT(azf_app_open(&app, "/", o), AZF_E_NOTFOUND);
    const char *unbuilt = "cannot start Python: Python 3.99 (the version option) has no libazfunc "
                          "adapter: there is no libazfunc-python3.99.so (adapters installed: ";
    CHECK(strncmp(azf_python_opts_errmsg(o), unbuilt, strlen(unbuilt)) == 0);
    CHECK_INT(azf_app_open(&app, "/nonexistent-app", o), AZF_E_IO);
    CHECK_STR(azf_python_opts_errmsg(o), "/nonexistent-app: not a readable directory");
    CHECK_INT(azf_python_opts_set_interpreter(o, ""), AZF_E_INVALID);
    CHECK_INT(azf_python_opts_set_app_dir(o, ""), AZF_E_INVALID);
    CHECK_STR(azf_python_opts_errmsg(NULL), "invalid handle");
    azf_python_opts_free(o);
}

/* Writes text to dir/name (dir created). */
static void write_file(const char *dir, const char *name, const char *text)
{
    char path[PATH_MAX];
    mkdir(dir, 0700);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    CHECK(f != NULL);
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

/* A venv is read from its pyvenv.cfg: "version" or "version_info" (virtualenv, uv),
 * else the interpreter in its "home"; a directory without one is refused. */
static void test_venv_discovery(void)
{
    char tmp[] = "/tmp/azf-venv-XXXXXX", venv[PATH_MAX + 32], cfg[256];
    CHECK(mkdtemp(tmp) != NULL);
    unsetenv("VIRTUAL_ENV");
    azf_python_opts *o;
    azf_app *app = NULL;
    CHECK_INT(azf_python_opts_new(&o), 0);

    snprintf(venv, sizeof venv, "%s/plain", tmp);
    write_file(venv, "README", "not a venv\n");
    CHECK_INT(azf_python_opts_set_venv(o, venv), 0);
    CHECK_INT(azf_app_open(&app, tmp, o), AZF_E_INVALID);
    char want[PATH_MAX + 256];
    snprintf(want, sizeof want,
             "cannot start Python: %s (from the venv option) is not a virtual environment: it "
             "has no pyvenv.cfg",
             venv);
    CHECK_STR(azf_python_opts_errmsg(o), want);

    snprintf(venv, sizeof venv, "%s/noversion", tmp);
    write_file(venv, "pyvenv.cfg", "home = /nonexistent/bin\n");
    CHECK_INT(azf_python_opts_set_venv(o, venv), 0);
    CHECK_INT(azf_app_open(&app, tmp, o), AZF_E_INVALID);
    snprintf(want, sizeof want,
             "cannot start Python: cannot tell which Python made the virtual environment %s: "
             "its pyvenv.cfg names no version and its home (/nonexistent/bin) has no python3",
             venv);
    CHECK_STR(azf_python_opts_errmsg(o), want);

    /* uv's layout: version_info, a home that is gone: the adapter's own installation of
     * that version runs, with the venv's site-packages. Found as the app's .venv. */
    azf_python *py = NULL;
    char root[PATH_MAX + 16];
    snprintf(root, sizeof root, "%s/app", tmp);
    snprintf(venv, sizeof venv, "%s/.venv", root);
    mkdir(root, 0700);
    azf_python_opts_free(o);
    CHECK_INT(azf_python_opts_new(&o), 0);
    CHECK_INT(azf_python_opts_set_app_dir(o, root), 0);
    CHECK_INT(azf_python_new(&py, o), 0);
    snprintf(cfg, sizeof cfg, "home = /nonexistent/bin\nversion_info = %s.7.final.0\n",
             AZF_TEST_DEFAULT_VERSION);
    write_file(venv, "pyvenv.cfg", cfg);
    CHECK_INT(azf_python_start(py), 0);
    CHECK(azf_python_venv(py) && strstr(azf_python_venv(py), "/app/.venv") != NULL);
    CHECK(strncmp(azf_python_version(py), AZF_TEST_DEFAULT_VERSION,
                  strlen(AZF_TEST_DEFAULT_VERSION)) == 0);
    CHECK(strstr(azf_python_executable(py), "/app/.venv/bin/python") != NULL);
    azf_python_free(py);
    azf_python_opts_free(o);
    char cmd[64];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
    CHECK_INT(system(cmd), 0);
}

/* A worker that was never asked for metadata indexes on the first load of a
 * worker-indexed function; an indexing error fails every such load, wrapped
 * in Exception as the official worker does (host-protocol.md §3.5). */
static void test_worker_indexed_failure(void)
{
    char meta[PATH_MAX * 2];
    snprintf(meta, sizeof meta,
             "{\"name\": \"one\", \"directory\": \"%s/tests/apps/v2_two_apps\", "
             "\"properties\": {\"worker_indexed\": \"True\"}}",
             getenv("AZF_SOURCE_DIR"));
    const char *want = "Exception: More than one FunctionApp or other top level function app "
                       "instances are defined.";
    azf_python *py = make(NULL, NULL);
    CHECK_INT(azf_python_start(py), 0);
    for (int i = 0; i < 2; i++) {
        CHECK_INT(azf_python_load(py, i ? "id-2" : "id-1", meta), AZF_E_PYTHON);
        CHECK_STR(azf_python_error_message(azf_python_last_error(py)), want);
    }
    azf_python_free(py);
}

/* --version X.Y: the plugin built for another Python (AZF_PYTHON_EXTRA). */
static void test_version(const char *version)
{
    unsetenv("VIRTUAL_ENV"); /* a shell's venv is another Python's */
    azf_python *py = make(version, NULL);
    CHECK_INT(azf_python_start(py), 0);
    CHECK(azf_python_version(py) && strncmp(azf_python_version(py), version, strlen(version)) == 0);
    azf_python_index *idx = NULL;
    CHECK_INT(azf_python_index_app(py, "/nonexistent-app", &idx), 0);
    CHECK_INT(azf_python_index_use_default(idx), 1);
    azf_python_index_free(idx);
    azf_python_free(py);
}

int main(int argc, char **argv)
{
    if (argc == 3 && strcmp(argv[1], "--version") == 0) {
        test_version(argv[2]);
        TEST_MAIN_END();
    }
    test_options();
    test_not_started();
    test_plugin_errors();
    test_lifecycle();
    test_threads();
    test_worker_indexed_failure();
    test_app_open_error();
    test_venv_discovery();
    TEST_MAIN_END();
}
