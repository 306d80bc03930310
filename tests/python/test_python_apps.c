/* Opens one app of tests/apps through the public azf_python API and checks
 * the outcome against <app>/expected.json:
 *
 *   "env":   {"NAME": "value"}            set before the interpreter starts
 *   "index": {"use_default": bool,        azf_python_index_use_default
 *             "functions": [{...}],       per function, every key given must be equal
 *                                         (null: absent; "%APP%": the app directory)
 *             "error": ERE, "stack": ERE, or: indexing fails with these texts
 *             "stack_excludes": "text"}
 *   "load":  {"<folder>": null | {"error": ERE, "stack": ERE}}
 *            v1: loads each function folder from its function.json, as the host would
 *   "bindings_as_map": true               v1: send bindings as a name -> BindingInfo map
 *
 * Every v2 function indexed is then loaded by id (it must succeed at once).
 * With --worker-indexed, the functions are instead loaded in a fresh runtime
 * with properties.worker_indexed and no index call (the multi-process case).
 * Environment: AZF_TEST_VENV, the virtual environment holding azure-functions. */
#include "azfunc/python.h"
#include "azf_test.h"
#include "read_file.h"

#include <cjson/cJSON.h>
#include <limits.h>
#include <regex.h>
#include <signal.h>
#include <stdlib.h>

static cJSON *read_json(const char *dir, const char *name)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path)
        return NULL;
    char *text = read_file(path);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    return j;
}

static int matches(const char *pattern, const char *text)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "bad regex in expected.json: %s\n", pattern);
        return 0;
    }
    int ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    if (!ok)
        fprintf(stderr, "no match for /%s/ in:\n%s\n", pattern, text);
    return ok;
}

/* A failed call must carry a Python error whose texts match the expectation. */
static void check_error(azf_python *py, int rc, const cJSON *want, const char *what)
{
    const char *re_msg = cJSON_GetStringValue(cJSON_GetObjectItem(want, "error"));
    const char *re_stack = cJSON_GetStringValue(cJSON_GetObjectItem(want, "stack"));
    const azf_python_error *err = azf_python_last_error(py);
    if (rc != AZF_E_PYTHON || !err) {
        fprintf(stderr, "%s: expected a Python error, got %d (%s)\n", what, rc,
                azf_python_errmsg(py));
        CHECK(0);
        return;
    }
    /* errmsg is the same text, cut to the handle's fixed buffer. */
    const char *errmsg = azf_python_errmsg(py);
    CHECK(*errmsg && strncmp(errmsg, azf_python_error_message(err), strlen(errmsg)) == 0);
    const char *excluded = cJSON_GetStringValue(cJSON_GetObjectItem(want, "stack_excludes"));
    if (excluded)
        CHECK(strstr(azf_python_error_stack_trace(err), excluded) == NULL);
    if (re_msg)
        CHECK(matches(re_msg, azf_python_error_message(err)));
    if (re_stack)
        CHECK(matches(re_stack, azf_python_error_stack_trace(err)));
}

static int start(azf_python **out)
{
    azf_python_opts *o;
    CHECK_INT(azf_python_opts_new(&o), 0);
    /* AZF_TEST_PYTHON=3.12: that Python with libazfunc's bundled azure-functions, no
     * venv (scripts/test.sh runs the corpus so on every Python the build found). */
    const char *venv = getenv("AZF_TEST_VENV"), *only = getenv("AZF_TEST_PYTHON");
    if (only && *only) {
        unsetenv("VIRTUAL_ENV"); /* a shell's venv is another Python's */
        CHECK_INT(azf_python_opts_set_version(o, only), 0);
    } else if (venv) {
        CHECK_INT(azf_python_opts_set_venv(o, venv), 0);
    }
    int rc = azf_python_new(out, o);
    azf_python_opts_free(o);
    if (rc == 0 && (rc = azf_python_start(*out)) != 0) {
        fprintf(stderr, "start: %s\n", azf_python_errmsg(*out));
        azf_python_free(*out);
    }
    return rc;
}

/* Every key of `want` equals the same key of `got`; null means "absent" and
 * "%APP%" stands for the app directory. */
static void check_subset(const cJSON *want, const cJSON *got, const char *app, int i)
{
    const cJSON *w;
    cJSON_ArrayForEach(w, want)
    {
        const cJSON *g = cJSON_GetObjectItemCaseSensitive(got, w->string);
        int ok;
        if (cJSON_IsNull(w))
            ok = g == NULL;
        else if (cJSON_IsString(w) && strcmp(w->valuestring, "%APP%") == 0)
            ok = cJSON_IsString(g) && strcmp(g->valuestring, app) == 0;
        else
            ok = g && cJSON_Compare(w, g, 1);
        if (!ok) {
            char *a = cJSON_PrintUnformatted(w), *b = g ? cJSON_PrintUnformatted(g) : NULL;
            fprintf(stderr, "function %d: \"%s\" is %s, expected %s\n", i, w->string,
                    b ? b : "(absent)", a);
            free(a);
            free(b);
            CHECK(0);
        }
    }
}

/* The FunctionLoadRequest metadata the host builds from function.json (§5.1). */
static char *v1_metadata(const char *app, const char *folder, int as_map)
{
    char dir[PATH_MAX];
    if (snprintf(dir, sizeof dir, "%s/%s", app, folder) >= (int)sizeof dir)
        return NULL;
    cJSON *fj = read_json(dir, "function.json");
    if (!fj)
        return NULL;
    const char *script = cJSON_GetStringValue(cJSON_GetObjectItem(fj, "scriptFile"));
    const char *entry = cJSON_GetStringValue(cJSON_GetObjectItem(fj, "entryPoint"));
    char path[PATH_MAX * 2];
    if (snprintf(path, sizeof path, "%s/%s", dir, script ? script : "__init__.py") >=
        (int)sizeof path) {
        cJSON_Delete(fj);
        return NULL;
    }
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "name", folder);
    cJSON_AddStringToObject(m, "directory", dir);
    cJSON_AddStringToObject(m, "scriptFile", path);
    cJSON_AddStringToObject(m, "entryPoint", entry ? entry : "");
    cJSON *bindings = cJSON_DetachItemFromObject(fj, "bindings");
    if (as_map) {
        cJSON *map = cJSON_CreateObject(), *b;
        cJSON_ArrayForEach(b, bindings)
        {
            cJSON *info = cJSON_CreateObject();
            cJSON_AddItemToObject(info, "type", cJSON_Duplicate(cJSON_GetObjectItem(b, "type"), 1));
            cJSON_AddItemToObject(info, "direction",
                                  cJSON_Duplicate(cJSON_GetObjectItem(b, "direction"), 1));
            if (cJSON_GetObjectItem(b, "dataType"))
                cJSON_AddItemToObject(info, "dataType",
                                      cJSON_Duplicate(cJSON_GetObjectItem(b, "dataType"), 1));
            cJSON_AddItemToObject(map, cJSON_GetStringValue(cJSON_GetObjectItem(b, "name")), info);
        }
        cJSON_Delete(bindings);
        bindings = map;
    }
    cJSON_AddItemToObject(m, "bindings", bindings);
    char *s = cJSON_PrintUnformatted(m);
    cJSON_Delete(m);
    cJSON_Delete(fj);
    return s;
}

static void run_v1_loads(azf_python *py, const char *app, const cJSON *loads, int as_map)
{
    const cJSON *l;
    cJSON_ArrayForEach(l, loads)
    {
        char *meta = v1_metadata(app, l->string, as_map);
        CHECK(meta != NULL);
        if (!meta)
            continue;
        int rc = azf_python_load(py, l->string, meta);
        if (cJSON_IsNull(l)) {
            if (rc != 0)
                fprintf(stderr, "load %s: %s\n", l->string, azf_python_errmsg(py));
            CHECK_INT(rc, 0);
            CHECK(azf_python_last_error(py) == NULL);
            CHECK_INT(azf_python_load(py, l->string, meta), 0); /* already loaded */
        } else {
            check_error(py, rc, l, l->string);
        }
        free(meta);
    }
}

/* Loads each indexed function by id, the way the host does after metadata. */
static void load_indexed(azf_python *py, const char *app, cJSON *functions)
{
    cJSON *f;
    cJSON_ArrayForEach(f, functions)
    {
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItem(f, "functionId"));
        char meta[PATH_MAX + 256];
        snprintf(meta, sizeof meta,
                 "{\"name\": \"%s\", \"directory\": \"%s\", "
                 "\"properties\": {\"worker_indexed\": \"True\"}}",
                 cJSON_GetStringValue(cJSON_GetObjectItem(f, "name")), app);
        int rc = azf_python_load(py, id, meta);
        if (rc != 0)
            fprintf(stderr, "load %s: %s\n", id, azf_python_errmsg(py));
        CHECK_INT(rc, 0);
    }
}

int main(int argc, char **argv)
{
    /* Apps may check that Python left the signal dispositions alone (v2_paths): start
     * from the defaults a host gives, whatever this run inherited (a suite started in
     * the background inherits SIGINT ignored). */
    signal(SIGINT, SIG_DFL);
    signal(SIGPIPE, SIG_DFL);
    int worker_indexed = argc > 2 && strcmp(argv[1], "--worker-indexed") == 0;
    if (argc < 2 || (argc > 2 && !worker_indexed)) {
        fprintf(stderr, "usage: %s [--worker-indexed] APP_DIR\n", argv[0]);
        return 2;
    }
    char app[PATH_MAX];
    if (!realpath(argv[argc - 1], app)) {
        perror(argv[argc - 1]);
        return 2;
    }
    cJSON *exp = read_json(app, "expected.json");
    if (!exp) {
        fprintf(stderr, "%s/expected.json is missing or not JSON\n", app);
        return 2;
    }
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(exp, "env")) setenv(e->string, e->valuestring, 1);

    azf_python *py;
    if (start(&py) != 0) {
        cJSON_Delete(exp);
        return 1;
    }
    const cJSON *want = cJSON_GetObjectItem(exp, "index");
    cJSON *functions = cJSON_CreateArray();
    azf_python_index *idx = NULL;
    int rc = azf_python_index_app(py, app, &idx);
    if (cJSON_GetObjectItem(want, "error")) {
        check_error(py, rc, want, "index");
        /* The failure is remembered, as for the worker's later load requests. */
        CHECK_INT(azf_python_index_app(py, app, &idx), AZF_E_PYTHON);
    } else if (rc != 0) {
        fprintf(stderr, "index: %s\n%s", azf_python_errmsg(py),
                azf_python_error_stack_trace(azf_python_last_error(py)));
        CHECK(0);
    } else {
        CHECK_INT(azf_python_index_use_default(idx),
                  cJSON_IsTrue(cJSON_GetObjectItem(want, "use_default")));
        const cJSON *wf = cJSON_GetObjectItem(want, "functions");
        CHECK_INT(azf_python_index_count(idx), cJSON_GetArraySize(wf));
        for (size_t i = 0; i < azf_python_index_count(idx); i++) {
            const char *text = azf_python_index_metadata(idx, i);
            cJSON *got = cJSON_Parse(text);
            CHECK(got != NULL);
            if (getenv("AZF_TEST_VERBOSE"))
                printf("%s\n", text);
            check_subset(cJSON_GetArrayItem(wf, (int)i), got, app, (int)i);
            cJSON_AddItemToArray(functions, got);
        }
        CHECK(azf_python_index_metadata(idx, azf_python_index_count(idx)) == NULL);
        azf_python_index_free(idx);
    }

    if (worker_indexed) {
        /* A second worker process: never asked for metadata. */
        azf_python_free(py);
        CHECK(cJSON_GetArraySize(functions) > 0);
        if (start(&py) != 0) {
            cJSON_Delete(functions);
            cJSON_Delete(exp);
            return 1;
        }
    }
    load_indexed(py, app, functions);
    run_v1_loads(py, app, cJSON_GetObjectItem(exp, "load"),
                 cJSON_IsTrue(cJSON_GetObjectItem(exp, "bindings_as_map")));

    azf_python_free(py);
    cJSON_Delete(functions);
    cJSON_Delete(exp);
    TEST_MAIN_END();
}
