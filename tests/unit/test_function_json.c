/* Tests of the function.json loader, driven by the app folders in tests/apps/v1/:
 * registry_good (every supported shape) and registry_broken (one folder per error). */
#include "azf_test.h"
#include "worker/worker_internal.h" /* RpcFunctionMetadata of a broken function */

#include <limits.h>
#include <stdlib.h>

static char g_good[PATH_MAX], g_broken[PATH_MAX];

static void app_path(char *out, const char *app)
{
    const char *src = getenv("AZF_SOURCE_DIR");
    char p[PATH_MAX];
    if (snprintf(p, sizeof p, "%s/tests/apps/v1/%s", src ? src : ".", app) >= (int)sizeof p ||
        !realpath(p, out))
        strcpy(out, "/missing-test-app");
}

static const char *path_in(const char *app, const char *rest)
{
    static char buf[4][PATH_MAX * 2];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", app, rest);
    return buf[k];
}

static void count_release(void *ud)
{
    (*(int *)ud)++;
}

static void test_good_app(void)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    azf_handler *h;
    azf_handler_new(&h);
    azf_handler_set_release(h, count_release);
    int releases = 0;
    CHECK_INT(azf_registry_load_v1(reg, g_good, h, &releases), 5);
    azf_handler_free(h);
    CHECK_INT(azf_registry_count(reg), 5);
    /* Folders are loaded in name order; shared_code has no function.json. */
    CHECK_STR(azf_function_name(azf_registry_at(reg, 0)), "CustomScript");
    CHECK(azf_registry_find(reg, "shared_code") == NULL);

    const azf_function *fn = azf_registry_find(reg, "HttpTrigger");
    CHECK(fn && !azf_function_load_error(fn));
    CHECK_STR(azf_function_directory(fn), path_in(g_good, "HttpTrigger"));
    CHECK_STR(azf_function_script_file(fn), path_in(g_good, "HttpTrigger/__init__.py"));
    CHECK_STR(azf_function_entry_point(fn), "");
    CHECK_STR(azf_function_id(fn), ""); /* the host supplies it */
    CHECK_STR(azf_function_route(fn), "items/{id:int?}");
    CHECK_INT(azf_function_auth_level(fn), AZF_AUTH_ANONYMOUS);
    CHECK_INT(azf_function_method_count(fn), 2);
    const azf_function *hit = NULL;
    azf_value_map *vals = NULL;
    CHECK_INT(azf_registry_match_route(reg, "POST", "items/12", &hit, &vals), 0);
    CHECK(hit == fn);
    CHECK_STR(azf_value_data(azf_value_map_get(vals, "id"), NULL), "12");
    azf_value_map_free(vals);

    fn = azf_registry_find(reg, "customscript");
    CHECK_STR(azf_function_script_file(fn), path_in(g_good, "CustomScript/main.py"));
    CHECK_STR(azf_function_entry_point(fn), "handler");
    CHECK_INT(azf_binding_data_type(azf_function_find_binding(fn, "msg")), AZF_DATA_TYPE_STRING);
    CHECK_INT(azf_binding_data_type(azf_function_find_binding(fn, "outblob")),
              AZF_DATA_TYPE_BINARY);
    /* Unknown binding keys are kept in the binding's JSON. */
    CHECK(strstr(azf_binding_json(azf_function_find_binding(fn, "msg")),
                 "\"queueName\":\"items\"") != NULL);

    fn = azf_registry_find(reg, "OnlyFile");
    CHECK_STR(azf_function_script_file(fn), path_in(g_good, "OnlyFile/worker.py"));
    CHECK_STR(azf_function_route(fn), "OnlyFile");
    CHECK_INT(azf_registry_match_route(reg, "GET", "onlyfile", &hit, NULL), 0);

    fn = azf_registry_find(reg, "Timer");
    CHECK_STR(azf_function_script_file(fn), path_in(g_good, "Timer/__init__.py"));
    CHECK(strstr(azf_binding_json(azf_function_trigger(fn)), "\"futureKey\":{\"nested\":[1,2,3]}"));
    int64_t mx;
    CHECK_INT(azf_function_retry(fn, NULL, NULL, NULL, &mx), AZF_RETRY_EXPONENTIAL_BACKOFF);
    CHECK_INT(mx, 900000);

    fn = azf_registry_find(reg, "Disabled");
    CHECK(azf_function_is_disabled(fn));
    CHECK_INT(azf_registry_match_route(reg, "GET", "disabled", &hit, NULL), AZF_E_NOTFOUND);
    azf_invocation *inv;
    azf_invocation_new(&inv, fn, "i");
    azf_invocation_start(inv);
    CHECK_STR(azf_invocation_error_message(inv),
              "FunctionDisabledError: the function 'Disabled' is disabled");
    azf_invocation_free(inv);

    /* Loading again clashes on names. */
    CHECK_INT(azf_registry_load_v1(reg, g_good, NULL, NULL), AZF_E_EXISTS);
    CHECK_STR(azf_registry_errmsg(reg), "A function named 'CustomScript' already exists.");
    azf_registry_free(reg);
    CHECK_INT(releases, 1); /* shared user_data released once */

    /* The public reader gives the metadata JSON contract. */
    azf_buf json = AZF_BUF_INIT, err = AZF_BUF_INIT;
    CHECK_INT(azf_function_json_read(g_good, "CustomScript", &json, &err), 0);
    char expect[PATH_MAX * 4];
    snprintf(expect, sizeof expect,
             "{\"name\":\"CustomScript\",\"directory\":\"%s/CustomScript\",\"scriptFile\":\"%s/"
             "CustomScript/main.py\",\"entryPoint\":\"handler\",\"bindings\":[",
             g_good, g_good);
    CHECK(strncmp(json.ptr, expect, strlen(expect)) == 0);
    azf_registry_new(&reg);
    CHECK_INT(azf_registry_add(reg, json.ptr, NULL, NULL), 0);
    CHECK_STR(azf_function_entry_point(azf_registry_find(reg, "CustomScript")), "handler");
    azf_registry_free(reg);
    azf_buf_dispose(&json);
    azf_buf_dispose(&err);
}

typedef struct {
    const char *folder;
    int code;
    const char *message; /* after "<app>/<folder>/function.json" */
} broken_case;

static const broken_case BROKEN[] = {
    {"bad_direction", AZF_E_PARSE,
     ": The binding 'item' has an invalid direction 'both'. Expected 'in', 'out' or 'inout'."},
    {"bad_route", AZF_E_PARSE,
     ": The route template 'items/{id:integer}' is invalid: the constraint reference 'integer' "
     "could not be resolved."},
    {"duplicate_names", AZF_E_PARSE,
     ": Multiple bindings with name 'Item' discovered. Binding names must be unique."},
    {"escaping_script", AZF_E_PARSE,
     ": the scriptFile '../../outside.py' is outside the function app root."},
    {"invalid_json", AZF_E_PARSE, ":3:64: invalid JSON"},
    {"missing_script", AZF_E_NOTFOUND,
     ": Invalid script file name configuration. The 'scriptFile' property is set to a file that "
     "does not exist."},
    {"no_script", AZF_E_NOTFOUND,
     ": Unable to determine the primary function script. Make sure at least one script file is "
     "present, or name it with the 'scriptFile' property."},
    {"no_trigger", AZF_E_PARSE,
     ": No trigger binding specified. A function must have a trigger input binding."},
    {"return_in", AZF_E_PARSE, ": $return bindings must specify a direction of 'out'."},
    {"two_triggers", AZF_E_PARSE,
     ": Multiple trigger bindings found ('first', 'second'). A function must have exactly one "
     "trigger binding."},
    {"unreadable", AZF_E_IO, ": cannot be read (Is a directory)."},
};

static void test_broken_app(void)
{
    size_t n = sizeof BROKEN / sizeof BROKEN[0];
    char expect[PATH_MAX * 4];
    for (size_t i = 0; i < n; i++) {
        azf_buf json = AZF_BUF_INIT, err = AZF_BUF_INIT;
        int rc = azf_function_json_read(g_broken, BROKEN[i].folder, &json, &err);
        snprintf(expect, sizeof expect, "%s/%s/function.json%s", g_broken, BROKEN[i].folder,
                 BROKEN[i].message);
        CHECK_INT(rc, BROKEN[i].code);
        CHECK_STR(err.ptr, expect);
        CHECK(json.ptr == NULL);
        azf_buf_dispose(&err);
    }
    /* Loading the app keeps going: every broken folder is a function carrying its error,
     * and invoking it fails with that error. */
    azf_registry *reg;
    azf_registry_new(&reg);
    CHECK_INT(azf_registry_load_v1(reg, g_broken, NULL, NULL), (int)n);
    for (size_t i = 0; i < n; i++) {
        const azf_function *fn = azf_registry_find(reg, BROKEN[i].folder);
        CHECK(fn != NULL);
        if (!fn)
            continue;
        snprintf(expect, sizeof expect, "%s/%s/function.json%s", g_broken, BROKEN[i].folder,
                 BROKEN[i].message);
        CHECK_STR(azf_function_load_error(fn), expect);
        CHECK_STR(azf_function_directory(fn), path_in(g_broken, BROKEN[i].folder));
        azf_invocation *inv;
        azf_invocation_new(&inv, fn, "x");
        CHECK_INT(azf_invocation_start(inv), 0);
        CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_FAILED);
        CHECK_STR(azf_invocation_error_message(inv), expect);
        azf_invocation_free(inv);
        /* The worker reports the function as a Failure. */
        azf__pb_function_metadata md = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_FUNCTION_METADATA__INIT;
        CHECK_INT(azf__function_to_pb(fn, &md), 0);
        CHECK_INT(md.status->status, AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Failure);
        CHECK_STR(md.status->exception->message, expect);
        azf__function_metadata_clear(&md);
    }
    azf_registry_free(reg);

    azf_registry_new(&reg);
    CHECK_INT(azf_registry_load_v1(reg, "/nonexistent/app", NULL, NULL), AZF_E_IO);
    CHECK_STR(azf_registry_errmsg(reg),
              "/nonexistent/app: cannot open the app root (No such file or directory).");
    azf_registry_free(reg);
    azf_buf err = AZF_BUF_INIT, json = AZF_BUF_INIT;
    CHECK_INT(azf_function_json_read(g_good, "NoSuchFunction", &json, &err), AZF_E_IO);
    azf_buf_dispose(&err);
}

static void parse_error(const char *text, const char *expect)
{
    cJSON *meta = NULL;
    azf__errmsg err;
    int rc = azf__function_json_parse(text, strlen(text), "f.json", "fn", &meta, &err);
    CHECK(rc < 0);
    CHECK(meta == NULL);
    CHECK_STR(err.text, expect);
}

static void test_parse_positions(void)
{
    parse_error("", "f.json:1:1: invalid JSON");
    parse_error("{", "f.json:1:2: invalid JSON");
    parse_error("{\n  \"bindings\": [\n    1,,\n  ]\n}", "f.json:3:7: invalid JSON");
    parse_error("\xEF\xBB\xBF{\"a\" 1}", "f.json:1:6: invalid JSON");
    parse_error("{} trailing", "f.json:1:4: invalid JSON");
    parse_error("[]", "f.json: the top level must be a JSON object.");
    parse_error("{\"bindings\": 5}", "f.json: bindings must be an array.");
    parse_error("{\"disabled\": 1, \"bindings\": []}", "f.json: disabled must be true or false.");
    /* A BOM and trailing whitespace are fine. */
    const char *ok = "\xEF\xBB\xBF{\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}]}\n\n";
    cJSON *meta = NULL;
    azf__errmsg err;
    CHECK_INT(azf__function_json_parse(ok, strlen(ok), "f.json", "fn", &meta, &err), 0);
    cJSON_Delete(meta);
}

/* The host's properties of a load request. */
static const azf__kv host_props[] = {{"FunctionsHost", "yes"}};

static int add_folder(azf_registry *reg, const char *dir, const char *name, const char *id,
                      const azf_function **fn)
{
    return azf__registry_add_folder(reg, id, name, dir, host_props, 1, NULL, NULL, fn);
}

/* The worker's v1 path: the host's FunctionLoadRequest names the function folder (the
 * worker passes its id, name, directory and properties). */
static void test_load_request(void)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    const azf_function *fn = NULL;
    char dir[PATH_MAX * 2];
    snprintf(dir, sizeof dir, "%s/HttpTrigger/", g_good);
    CHECK_INT(add_folder(reg, dir, "HttpTrigger", "host-1", &fn), 0);
    CHECK(fn == azf_registry_find_id(reg, "host-1"));
    CHECK_STR(azf_function_route(fn), "items/{id:int?}");
    CHECK_STR(azf_function_property(fn, "FunctionsHost"), "yes");
    CHECK_STR(azf_function_script_file(fn), path_in(g_good, "HttpTrigger/__init__.py"));
    /* A second load of the same function keeps it. */
    CHECK_INT(add_folder(reg, dir, "HttpTrigger", "host-1", &fn), 0);
    CHECK_INT(azf_registry_count(reg), 1);
    snprintf(dir, sizeof dir, "%s/no_trigger", g_broken);
    CHECK_INT(add_folder(reg, dir, "no_trigger", "host-2", &fn), 0);
    CHECK(fn == azf_registry_find_id(reg, "host-2"));
    char expect[PATH_MAX * 4];
    snprintf(expect, sizeof expect, "%s/no_trigger/function.json%s", g_broken, BROKEN[7].message);
    CHECK_STR(azf_function_load_error(fn), expect);
    CHECK_INT(add_folder(reg, dir, "x", "", &fn), AZF_E_INVALID);
    azf_registry_free(reg);
}

int main(void)
{
    app_path(g_good, "registry_good");
    app_path(g_broken, "registry_broken");
    RUN(test_good_app());
    RUN(test_broken_app());
    RUN(test_parse_positions());
    RUN(test_load_request());
    TEST_MAIN_END();
}
