/* Runs invocations of one app of tests/apps through the public API (the
 * Python handler in a registry, as the worker and the local runner use it)
 * and checks every result against <app>/invocations.json:
 *
 *   "env":   {"NAME": "value"}          set before the interpreter starts ("%APP%": the app)
 *   "cases": [{
 *      "function": "name",
 *      "inputs":   {"binding": VALUE},  VALUE: null | {"string": s} | {"json": s}
 *                                       | {"bytes": s} | {"stream": s} | {"int": n}
 *                                       | {"double": x} | {"collection_string": [s]}
 *                                       | {"collection_bytes": [s]} | {"collection_sint64": [n]}
 *                                       | {"collection_double": [x]}
 *                                       | {"model_binding_data": {version, source,
 *                                           content_type, content}}
 *                                       | {"http": {method, url, headers, query, params,
 *                                           body: VALUE}}
 *      "metadata": {"key": VALUE},      trigger metadata
 *      "trace":    {"parent", "state", "attributes": {}},  "retry": {count, max, message, stack}
 *      "repeat":   n,                   start n copies at once, then wait for all
 *      "cancel":   true,                cancel right after starting
 *      "expect": {"status": "succeeded" | "failed" | "cancelled",
 *                 "return": VALUE | HTTP,  absent key: not checked; null: no value
 *                 "outputs": {"name": VALUE | HTTP | null},
 *                 "error": ERE, "stack": ERE,
 *                 "logs": [{"level": n, "category": s, "message": ERE}]  in order, before
 *                 completion}}]         (other logs may come between)
 *      HTTP (expected): {"http": {"status": s, "headers": {..}, "body": VALUE,
 *                                 "cookies": [{name, value, domain, path, expires,
 *                                              secure, http_only, same_site, max_age}]}}
 *   "drain": {"function": name, "timeout_ms": n, "failed": n}
 *                                       start it, then azf_python_drain: n failed
 *   "system_log": ERE                   a System log record matching it was seen
 *   "requires": "path"                  skip (77) unless <venv>/lib/python3.X/site-packages/path
 *   "index_contains": [ERE]             each matches one raw binding of the index
 *   "reload": {"env": {..}}             azf_python_reload_environment(env, app dir)
 *                                       after registering, before the cases
 *
 * Every invocation must complete exactly once (checked through the completion
 * callback count) before the test ends. */
#include "azfunc/python.h"
#include "azfunc/registry.h"
#include "azf_test.h"
#include "read_file.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <glob.h>
#include <limits.h>
#include <pthread.h>
#include <regex.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int completions;
    int log_count;
    cJSON *logs; /* array of {level, category, message} seen before completion */
    int run;     /* --run: azf_invocation_run for single cases */
} track;

static int matches(const char *pattern, const char *text)
{
    regex_t re;
    if (regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB) != 0) {
        fprintf(stderr, "bad regex: %s\n", pattern);
        return 0;
    }
    int ok = regexec(&re, text, 0, NULL, 0) == 0;
    regfree(&re);
    return ok;
}

/* ---------------------------------------------------------------- values */

static azf_value *make_value(const cJSON *spec);

static azf_value *make_collection(int kind, const cJSON *items)
{
    azf_value *c = NULL;
    CHECK_INT(azf_value_new_collection(&c, kind), 0);
    const cJSON *it;
    cJSON_ArrayForEach(it, items)
    {
        azf_value *v = NULL;
        if (kind == AZF_VALUE_COLLECTION_STRING)
            azf_value_new_string(&v, it->valuestring);
        else if (kind == AZF_VALUE_COLLECTION_BYTES)
            azf_value_new_data(&v, AZF_VALUE_BYTES, it->valuestring, strlen(it->valuestring));
        else if (kind == AZF_VALUE_COLLECTION_SINT64)
            azf_value_new_int(&v, (int64_t)it->valuedouble);
        else
            azf_value_new_double(&v, it->valuedouble);
        CHECK_INT(azf_value_collection_append(c, v), 0);
    }
    return c;
}

static void http_fill(azf_value *h, int map, const cJSON *obj)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        CHECK_INT(azf_value_http_set(h, map, it->string, cJSON_GetStringValue(it)), 0);
    }
}

static azf_value *make_value(const cJSON *spec)
{
    azf_value *v = NULL;
    if (!spec || cJSON_IsNull(spec)) {
        azf_value_new_null(&v);
        return v;
    }
    const cJSON *m = spec->child;
    const char *k = m->string;
    static const struct {
        const char *name;
        int kind;
    } data[] = {{"string", AZF_VALUE_STRING},
                {"json", AZF_VALUE_JSON},
                {"bytes", AZF_VALUE_BYTES},
                {"stream", AZF_VALUE_STREAM}};
    for (size_t i = 0; i < 4; i++)
        if (!strcmp(k, data[i].name)) {
            CHECK_INT(azf_value_new_data(&v, data[i].kind, m->valuestring, strlen(m->valuestring)),
                      0);
            return v;
        }
    if (!strcmp(k, "int"))
        azf_value_new_int(&v, (int64_t)m->valuedouble);
    else if (!strcmp(k, "double"))
        azf_value_new_double(&v, m->valuedouble);
    else if (!strcmp(k, "collection_string"))
        v = make_collection(AZF_VALUE_COLLECTION_STRING, m);
    else if (!strcmp(k, "collection_bytes"))
        v = make_collection(AZF_VALUE_COLLECTION_BYTES, m);
    else if (!strcmp(k, "collection_sint64"))
        v = make_collection(AZF_VALUE_COLLECTION_SINT64, m);
    else if (!strcmp(k, "collection_double"))
        v = make_collection(AZF_VALUE_COLLECTION_DOUBLE, m);
    else if (!strcmp(k, "model_binding_data")) {
        const char *content = cJSON_GetStringValue(cJSON_GetObjectItem(m, "content"));
        azf_value_new_model_binding_data(
            &v, cJSON_GetStringValue(cJSON_GetObjectItem(m, "version")),
            cJSON_GetStringValue(cJSON_GetObjectItem(m, "source")),
            cJSON_GetStringValue(cJSON_GetObjectItem(m, "content_type")), content,
            content ? strlen(content) : 0);
    } else if (!strcmp(k, "http")) {
        azf_value_new_http(&v);
        azf_value_http_set_method(v, cJSON_GetStringValue(cJSON_GetObjectItem(m, "method")));
        azf_value_http_set_url(v, cJSON_GetStringValue(cJSON_GetObjectItem(m, "url")));
        http_fill(v, AZF_HTTP_HEADERS, cJSON_GetObjectItem(m, "headers"));
        http_fill(v, AZF_HTTP_QUERY, cJSON_GetObjectItem(m, "query"));
        http_fill(v, AZF_HTTP_PARAMS, cJSON_GetObjectItem(m, "params"));
        const cJSON *body = cJSON_GetObjectItem(m, "body");
        if (body)
            CHECK_INT(azf_value_http_set_body(v, make_value(body)), 0);
    } else {
        fprintf(stderr, "unknown value kind %s\n", k);
        CHECK(0);
    }
    return v;
}

static void check_str(const char *what, const char *got, const cJSON *want)
{
    if (cJSON_IsNull(want)) {
        if (got) {
            fprintf(stderr, "%s: expected null, got \"%s\"\n", what, got);
            CHECK(0);
        }
        return;
    }
    const char *w = cJSON_GetStringValue(want);
    if (!got || !w || strcmp(got, w)) {
        fprintf(stderr, "%s: expected \"%s\", got \"%s\"\n", what, w ? w : "?",
                got ? got : "(null)");
        CHECK(0);
    }
}

static void check_value(const char *what, const azf_value *v, const cJSON *want);

static void check_http(const char *what, const azf_value *v, const cJSON *w)
{
    char sub[256];
    const cJSON *st = cJSON_GetObjectItem(w, "status");
    if (st)
        check_str(what, azf_value_http_status_code(v), st);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(w, "headers"))
    {
        const char *got = NULL;
        snprintf(sub, sizeof sub, "%s header %s", what, it->string);
        if (azf_value_http_get(v, AZF_HTTP_HEADERS, it->string, &got) != 1)
            got = NULL;
        check_str(sub, got, it);
    }
    const cJSON *absent;
    cJSON_ArrayForEach(absent, cJSON_GetObjectItem(w, "headers_absent"))
    {
        const char *got = NULL;
        CHECK_INT(azf_value_http_get(v, AZF_HTTP_HEADERS, absent->valuestring, &got), 0);
    }
    const cJSON *body = cJSON_GetObjectItem(w, "body");
    if (body) {
        snprintf(sub, sizeof sub, "%s body", what);
        check_value(sub, azf_value_http_body(v), body);
    }
    const cJSON *cookies = cJSON_GetObjectItem(w, "cookies");
    if (!cookies)
        return;
    CHECK_INT((int)azf_value_http_cookie_count(v), cJSON_GetArraySize(cookies));
    int i = 0;
    cJSON_ArrayForEach(it, cookies)
    {
        const azf_cookie *c = azf_value_http_cookie(v, (size_t)i++);
        if (!c)
            break;
        snprintf(sub, sizeof sub, "%s cookie %d", what, i);
        check_str(sub, azf_cookie_name(c), cJSON_GetObjectItem(it, "name"));
        check_str(sub, azf_cookie_value(c), cJSON_GetObjectItem(it, "value"));
        check_str(sub, azf_cookie_domain(c), cJSON_GetObjectItem(it, "domain"));
        check_str(sub, azf_cookie_path(c), cJSON_GetObjectItem(it, "path"));
        int64_t secs = 0;
        int32_t nanos = 0;
        int has = azf_cookie_expires(c, &secs, &nanos);
        const cJSON *ex = cJSON_GetObjectItem(it, "expires");
        CHECK_INT(has ? (int64_t)secs : -1, cJSON_IsNumber(ex) ? (int64_t)ex->valuedouble : -1);
        CHECK_INT(azf_cookie_secure(c), (int)cJSON_GetObjectItem(it, "secure")->valuedouble);
        CHECK_INT(azf_cookie_http_only(c), (int)cJSON_GetObjectItem(it, "http_only")->valuedouble);
        CHECK_INT(azf_cookie_same_site(c), (int)cJSON_GetObjectItem(it, "same_site")->valuedouble);
        double age = 0;
        const cJSON *ma = cJSON_GetObjectItem(it, "max_age");
        CHECK_INT(azf_cookie_max_age(c, &age), cJSON_IsNumber(ma));
        if (cJSON_IsNumber(ma))
            CHECK(age == ma->valuedouble);
    }
}

static void check_value(const char *what, const azf_value *v, const cJSON *want)
{
    if (!want || cJSON_IsNull(want)) {
        if (azf_value_kind(v) != AZF_VALUE_NULL) {
            fprintf(stderr, "%s: expected no value, got %s\n", what,
                    azf_value_kind_name(azf_value_kind(v)));
            CHECK(0);
        }
        return;
    }
    const cJSON *m = want->child;
    if (strcmp(azf_value_kind_name(azf_value_kind(v)), m->string)) {
        fprintf(stderr, "%s: expected %s, got %s\n", what, m->string,
                azf_value_kind_name(azf_value_kind(v)));
        if (azf_value_data(v, NULL))
            fprintf(stderr, "  data: %s\n", (const char *)azf_value_data(v, NULL));
        CHECK(0);
        return;
    }
    switch (azf_value_kind(v)) {
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
    case AZF_VALUE_BYTES:
        check_str(what, azf_value_data(v, NULL), m);
        break;
    case AZF_VALUE_INT:
        CHECK_INT(azf_value_int(v), (int64_t)m->valuedouble);
        break;
    case AZF_VALUE_DOUBLE:
        CHECK(azf_value_double(v) == m->valuedouble);
        break;
    case AZF_VALUE_HTTP:
        check_http(what, v, m);
        break;
    default:
        CHECK(0);
    }
}

/* ---------------------------------------------------------------- running */

static track T = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, NULL, 0};

static void on_complete(azf_invocation *inv, void *ud)
{
    (void)inv;
    (void)ud;
    pthread_mutex_lock(&T.lock);
    T.completions++;
    pthread_cond_broadcast(&T.cond);
    pthread_mutex_unlock(&T.lock);
}

static void on_log(azf_invocation *inv, int level, const char *category, const char *message,
                   void *ud)
{
    cJSON *logs = ud;
    pthread_mutex_lock(&T.lock);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_RUNNING);
    cJSON *r = cJSON_CreateObject();
    cJSON_AddNumberToObject(r, "level", level);
    cJSON_AddStringToObject(r, "category", category);
    cJSON_AddStringToObject(r, "message", message);
    cJSON_AddItemToArray(logs, r);
    pthread_mutex_unlock(&T.lock);
}

static char *syslogs;
static size_t syslogs_len;

static void on_system_log(int level, const char *category, const char *message, void *ud)
{
    (void)ud;
    pthread_mutex_lock(&T.lock);
    char line[4096];
    int n = snprintf(line, sizeof line, "%d %s %s\n", level, category, message);
    if (n > 0) {
        size_t add = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
        char *p = realloc(syslogs, syslogs_len + add + 1);
        if (p) {
            memcpy(p + syslogs_len, line, add);
            syslogs_len += add;
            p[syslogs_len] = '\0';
            syslogs = p;
        }
    }
    pthread_mutex_unlock(&T.lock);
}

static void wait_completions(int n)
{
    pthread_mutex_lock(&T.lock);
    while (T.completions < n)
        pthread_cond_wait(&T.cond, &T.lock);
    pthread_mutex_unlock(&T.lock);
}

static azf_invocation *start_case(azf_registry *reg, const cJSON *c, int i, cJSON *logs,
                                  int may_run)
{
    const char *fname = cJSON_GetStringValue(cJSON_GetObjectItem(c, "function"));
    const azf_function *fn = azf_registry_find(reg, fname);
    if (!fn) {
        fprintf(stderr, "no function %s\n", fname);
        CHECK(0);
        return NULL;
    }
    char id[64];
    snprintf(id, sizeof id, "inv-%s-%d", fname, i);
    if (getenv("AZF_TEST_VERBOSE"))
        fprintf(stderr, "start %s\n", id);
    azf_invocation *inv = NULL;
    CHECK_INT(azf_invocation_new(&inv, fn, id), 0);
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(c, "inputs"))
    {
        CHECK_INT(azf_invocation_set_input(inv, it->string, make_value(it)), 0);
    }
    const cJSON *md = cJSON_GetObjectItem(c, "metadata");
    if (md) {
        azf_value_map *m = NULL;
        azf_value_map_new(&m);
        cJSON_ArrayForEach(it, md)
        {
            azf_value_map_set(m, it->string, make_value(it));
        }
        CHECK_INT(azf_invocation_set_trigger_metadata(inv, m), 0);
    }
    const cJSON *tr = cJSON_GetObjectItem(c, "trace");
    if (tr) {
        azf_value_map *attrs = NULL;
        azf_value_map_new(&attrs);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(tr, "attributes"))
        {
            azf_value *s = NULL;
            azf_value_new_string(&s, it->valuestring);
            azf_value_map_set(attrs, it->string, s);
        }
        CHECK_INT(azf_invocation_set_trace_context(
                      inv, cJSON_GetStringValue(cJSON_GetObjectItem(tr, "parent")),
                      cJSON_GetStringValue(cJSON_GetObjectItem(tr, "state")), attrs),
                  0);
    }
    const cJSON *rt = cJSON_GetObjectItem(c, "retry");
    if (rt)
        CHECK_INT(azf_invocation_set_retry_context(
                      inv, (int32_t)cJSON_GetObjectItem(rt, "count")->valuedouble,
                      (int32_t)cJSON_GetObjectItem(rt, "max")->valuedouble,
                      cJSON_GetStringValue(cJSON_GetObjectItem(rt, "message")),
                      cJSON_GetStringValue(cJSON_GetObjectItem(rt, "stack"))),
                  0);
    CHECK_INT(azf_invocation_set_on_complete(inv, on_complete, NULL), 0);
    CHECK_INT(azf_invocation_set_on_log(inv, on_log, logs), 0);
    int cancel = cJSON_IsTrue(cJSON_GetObjectItem(c, "cancel"));
    int repeat = cJSON_IsNumber(cJSON_GetObjectItem(c, "repeat"));
    /* --run: single cases through azf_invocation_run (on this thread for sync
     * functions); concurrent and cancelled ones still start. */
    if (T.run && may_run && !cancel && !repeat) {
        CHECK_INT(azf_invocation_run(inv), 0);
        CHECK(azf_invocation_status(inv) >= AZF_INVOCATION_SUCCEEDED);
    } else {
        CHECK_INT(azf_invocation_start(inv), 0);
    }
    if (cancel)
        azf_invocation_cancel(inv);
    return inv;
}

static const char *status_name(int s)
{
    static const char *names[] = {"new", "running", "succeeded", "failed", "cancelled"};
    return s >= 0 && s <= 4 ? names[s] : "?";
}

static void check_case(const cJSON *c, azf_invocation *inv, const cJSON *logs)
{
    const cJSON *e = cJSON_GetObjectItem(c, "expect");
    const char *fname = cJSON_GetStringValue(cJSON_GetObjectItem(c, "function"));
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(e, "status"));
    const char *got = status_name(azf_invocation_status(inv));
    if (strcmp(got, want ? want : "succeeded")) {
        fprintf(stderr, "%s: expected %s, got %s: %s\n%s\n", fname, want ? want : "succeeded", got,
                azf_invocation_error_message(inv), azf_invocation_error_stack(inv));
        CHECK(0);
        return;
    }
    const cJSON *err = cJSON_GetObjectItem(e, "error");
    if (err && !matches(err->valuestring, azf_invocation_error_message(inv))) {
        fprintf(stderr, "%s: error /%s/ not in: %s\n", fname, err->valuestring,
                azf_invocation_error_message(inv));
        CHECK(0);
    }
    const cJSON *stack = cJSON_GetObjectItem(e, "stack");
    if (stack && !matches(stack->valuestring, azf_invocation_error_stack(inv))) {
        fprintf(stderr, "%s: stack /%s/ not in:\n%s\n", fname, stack->valuestring,
                azf_invocation_error_stack(inv));
        CHECK(0);
    }
    char what[256];
    const cJSON *ret = cJSON_GetObjectItem(e, "return");
    if (ret) {
        snprintf(what, sizeof what, "%s return", fname);
        check_value(what, azf_invocation_return_value(inv), ret);
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(e, "outputs"))
    {
        snprintf(what, sizeof what, "%s output %s", fname, it->string);
        check_value(what, azf_value_map_get(azf_invocation_outputs(inv), it->string), it);
    }
    /* Expected logs in order, others may be in between. */
    const cJSON *log = logs ? logs->child : NULL;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(e, "logs"))
    {
        const char *re = cJSON_GetStringValue(cJSON_GetObjectItem(it, "message"));
        int level = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(it, "level"));
        const char *cat = cJSON_GetStringValue(cJSON_GetObjectItem(it, "category"));
        while (
            log &&
            !((int)cJSON_GetNumberValue(cJSON_GetObjectItem(log, "level")) == level &&
              (!cat || !strcmp(cat, cJSON_GetStringValue(cJSON_GetObjectItem(log, "category")))) &&
              matches(re, cJSON_GetStringValue(cJSON_GetObjectItem(log, "message")))))
            log = log->next;
        if (!log) {
            char *all = cJSON_Print(logs);
            fprintf(stderr, "%s: no log %d /%s/ in order; logs: %s\n", fname, level, re, all);
            free(all);
            CHECK(0);
            break;
        }
        log = log->next;
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* v1: every folder with a function.json is added and loaded, as the host does. */
static void load_v1(azf_python *py, azf_registry *reg, const char *app)
{
    DIR *d = opendir(app);
    CHECK(d != NULL);
    char *names[256];
    size_t n = 0;
    struct dirent *de;
    while (d && (de = readdir(d)) && n < 256) {
        char path[PATH_MAX + 300];
        snprintf(path, sizeof path, "%s/%s/function.json", app, de->d_name);
        FILE *f = fopen(path, "r");
        if (f) {
            fclose(f);
            names[n++] = strdup(de->d_name);
        }
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        azf_buf meta = {0}, err = {0};
        CHECK_INT(azf_function_json_read(app, names[i], &meta, &err), 0);
        char id[128];
        snprintf(id, sizeof id, "id-%s", names[i]);
        CHECK_INT(azf_registry_add(reg, meta.ptr, azf_python_handler(py), py), 0);
        CHECK_INT(azf_registry_bind_id(reg, names[i], id), 0);
        int rc = azf_python_load(py, id, meta.ptr);
        if (rc != 0)
            fprintf(stderr, "load %s: %s\n", names[i], azf_python_errmsg(py));
        CHECK_INT(rc, 0);
        azf_buf_dispose(&meta);
        azf_buf_dispose(&err);
        free(names[i]);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s <app dir> [--run]\n", argv[0]);
        return 2;
    }
    T.run = argc > 2 && !strcmp(argv[2], "--run");
    char app[PATH_MAX];
    CHECK(realpath(argv[1], app) != NULL);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/invocations.json", app);
    char *text = read_file(path);
    cJSON *spec = text ? cJSON_Parse(text) : NULL;
    free(text);
    if (!spec) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    const cJSON *it;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(spec, "env"))
    {
        setenv(it->string, strcmp(it->valuestring, "%APP%") ? it->valuestring : app, 1);
    }

    /* AZF_TEST_PYTHON=3.12: that Python with libazfunc's bundled azure-functions, no
     * venv (scripts/test.sh runs the corpus so on every Python the build found). */
    const char *only = getenv("AZF_TEST_PYTHON");
    const char *venv = only && *only ? "/nonexistent" : getenv("AZF_TEST_VENV");
    const char *requires = cJSON_GetStringValue(cJSON_GetObjectItem(spec, "requires"));
    if (requires) {
        char pattern[PATH_MAX + 300];
        glob_t g;
        snprintf(pattern, sizeof pattern, "%s/lib/python3.*/site-packages/%s", venv ? venv : "",
                 requires);
        int found = glob(pattern, 0, NULL, &g) == 0;
        globfree(&g);
        if (!found) {
            fprintf(stderr, "skipped: %s is not installed\n", requires);
            cJSON_Delete(spec);
            return 77;
        }
    }

    azf_python_opts *o = NULL;
    CHECK_INT(azf_python_opts_new(&o), 0);
    if (only && *only) {
        unsetenv("VIRTUAL_ENV"); /* a shell's venv is another Python's */
        CHECK_INT(azf_python_opts_set_version(o, only), 0);
    } else if (venv)
        CHECK_INT(azf_python_opts_set_venv(o, venv), 0);
    CHECK_INT(azf_python_opts_set_log_callback(o, on_system_log, NULL), 0);
    azf_python *py = NULL;
    CHECK_INT(azf_python_new(&py, o), 0);
    azf_python_opts_free(o);
    int rc = azf_python_start(py);
    if (rc != 0)
        fprintf(stderr, "start: %s\n", azf_python_errmsg(py));
    CHECK_INT(rc, 0);

    azf_registry *reg = NULL;
    CHECK_INT(azf_registry_new(&reg), 0);
    azf_python_index *idx = NULL;
    rc = azf_python_index_app(py, app, &idx);
    if (rc != 0)
        fprintf(stderr, "index: %s\n", azf_python_errmsg(py));
    CHECK_INT(rc, 0);
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(spec, "index_contains"))
    {
        int found = 0;
        for (size_t i = 0; !found && i < azf_python_index_count(idx); i++) {
            cJSON *meta = cJSON_Parse(azf_python_index_metadata(idx, i));
            const cJSON *raw;
            cJSON_ArrayForEach(raw, cJSON_GetObjectItem(meta, "rawBindings"))
            {
                found = found || matches(it->valuestring, raw->valuestring);
            }
            cJSON_Delete(meta);
        }
        if (!found)
            fprintf(stderr, "no raw binding matches /%s/\n", it->valuestring);
        CHECK(found);
    }
    if (azf_python_index_use_default(idx))
        load_v1(py, reg, app);
    else
        CHECK_INT(azf_python_register(py, reg, idx), (int)azf_python_index_count(idx));
    azf_python_index_free(idx);

    const cJSON *reload = cJSON_GetObjectItem(spec, "reload");
    if (reload) {
        azf_value_map *env = NULL;
        CHECK_INT(azf_value_map_new(&env), 0);
        cJSON_ArrayForEach(it, cJSON_GetObjectItem(reload, "env"))
        {
            azf_value *v = NULL;
            azf_value_new_string(&v, it->valuestring);
            CHECK_INT(azf_value_map_set(env, it->string, v), 0);
        }
        rc = azf_python_reload_environment(py, env, app);
        if (rc != 0)
            fprintf(stderr, "reload: %s\n", azf_python_errmsg(py));
        CHECK_INT(rc, 0);
        azf_value_map_free(env);
    }

    int started = 0;
    cJSON_ArrayForEach(it, cJSON_GetObjectItem(spec, "cases"))
    {
        int repeat = cJSON_IsNumber(cJSON_GetObjectItem(it, "repeat"))
                         ? (int)cJSON_GetObjectItem(it, "repeat")->valuedouble
                         : 1;
        azf_invocation **invs = calloc((size_t)repeat, sizeof *invs);
        cJSON **logs = calloc((size_t)repeat, sizeof *logs);
        for (int i = 0; i < repeat; i++) {
            logs[i] = cJSON_CreateArray();
            invs[i] = start_case(reg, it, started + i, logs[i], 1);
        }
        started += repeat;
        wait_completions(started);
        for (int i = 0; i < repeat; i++) {
            if (invs[i])
                check_case(it, invs[i], logs[i]);
            azf_invocation_free(invs[i]);
            cJSON_Delete(logs[i]);
        }
        free(invs);
        free(logs);
    }

    const cJSON *drain = cJSON_GetObjectItem(spec, "drain");
    if (drain) {
        cJSON *logs = cJSON_CreateArray();
        azf_invocation *inv = start_case(reg, drain, started++, logs, 0);
        int n = azf_python_drain(py, (int)cJSON_GetObjectItem(drain, "timeout_ms")->valuedouble);
        CHECK_INT(n, (int)cJSON_GetObjectItem(drain, "failed")->valuedouble);
        wait_completions(started);
        CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_FAILED);
        CHECK(matches("^TimeoutError: ", azf_invocation_error_message(inv)));
        azf_invocation_free(inv);
        /* After a drain nothing is accepted, and still completed once. */
        inv = start_case(reg, drain, started++, logs, 0);
        wait_completions(started);
        CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_FAILED);
        CHECK_STR(azf_invocation_error_message(inv),
                  "RuntimeError: the Python worker is shutting down");
        azf_invocation_free(inv);
        cJSON_Delete(logs);
    } else {
        CHECK_INT(azf_python_drain(py, -1), 0);
    }
    const cJSON *sys_re = cJSON_GetObjectItem(spec, "system_log");
    if (sys_re && !matches(sys_re->valuestring, syslogs ? syslogs : "")) {
        fprintf(stderr, "no System log /%s/ in:\n%s\n", sys_re->valuestring,
                syslogs ? syslogs : "");
        CHECK(0);
    }
    pthread_mutex_lock(&T.lock);
    CHECK_INT(T.completions, started);
    pthread_mutex_unlock(&T.lock);
    azf_python_free(py);
    azf_registry_free(reg);
    free(syslogs);
    cJSON_Delete(spec);
    TEST_MAIN_END();
}
