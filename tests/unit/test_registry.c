/* Tests of the registry: the metadata JSON contract, lookups, route templates and
 * constraints, handlers and invocations (completed exactly once), and the protobuf-c
 * conversions used by the worker. */
#include "azf_test.h"
#include "worker/worker_internal.h"

#include <pthread.h>
#include <stdlib.h>

static const char *HTTP_FN =
    "{\"name\":\"Products\",\"functionId\":\"id-1\",\"directory\":\"/app\","
    "\"scriptFile\":\"function_app.py\",\"entryPoint\":\"products\","
    "\"bindings\":[{\"direction\":\"IN\",\"type\":\"httpTrigger\",\"name\":\"req\","
    "\"authLevel\":\"ANONYMOUS\",\"methods\":[\"get\",\"Post\"],"
    "\"route\":\"products/{category:alpha}/{id:int?}\",\"extra\":{\"kept\":[1,2]}},"
    "{\"direction\":\"OUT\",\"type\":\"http\",\"name\":\"$return\"},"
    "{\"direction\":\"out\",\"type\":\"queue\",\"name\":\"msg\",\"dataType\":\"STRING\"}],"
    "\"rawBindings\":[\"{\\\"raw\\\":0}\",\"{\\\"raw\\\":1}\",\"{\\\"raw\\\":2}\"],"
    "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":\"3\","
    "\"delayInterval\":\"00:00:05\"},"
    "\"properties\":{\"worker_indexed\":\"True\"}}";

static int add(azf_registry *reg, const char *json)
{
    return azf_registry_add(reg, json, NULL, NULL);
}

/* A one-trigger function with the given trigger binding JSON. */
static int add_with(azf_registry *reg, const char *name, const char *bindings)
{
    char buf[2048];
    snprintf(buf, sizeof buf, "{\"name\":\"%s\",\"bindings\":[%s]}", name, bindings);
    return add(reg, buf);
}

static void test_contract(void)
{
    azf_registry *reg;
    CHECK_INT(azf_registry_new(&reg), 0);
    CHECK_INT(add(reg, HTTP_FN), 0);
    const azf_function *fn = azf_registry_find(reg, "products");
    CHECK(fn != NULL);
    CHECK(azf_registry_find_id(reg, "id-1") == fn);
    CHECK(azf_registry_find_id(reg, "ID-1") == NULL);
    CHECK_STR(azf_function_name(fn), "Products");
    CHECK_STR(azf_function_directory(fn), "/app");
    CHECK_STR(azf_function_script_file(fn), "function_app.py");
    CHECK_STR(azf_function_entry_point(fn), "products");
    CHECK_STR(azf_function_language(fn), "python");
    CHECK_INT(azf_function_binding_count(fn), 3);
    const azf_binding *b = azf_function_trigger(fn);
    CHECK_STR(azf_binding_name(b), "req");
    CHECK_INT(azf_binding_direction(b), AZF_DIRECTION_IN);
    CHECK(azf_binding_is_trigger(b));
    CHECK_STR(azf_binding_json(b), "{\"raw\":0}"); /* verbatim raw binding */
    b = azf_function_find_binding(fn, "MSG");
    CHECK_INT(azf_binding_direction(b), AZF_DIRECTION_OUT);
    CHECK_INT(azf_binding_data_type(b), AZF_DATA_TYPE_STRING);
    CHECK_STR(azf_function_route(fn), "products/{category:alpha}/{id:int?}");
    CHECK_INT(azf_function_method_count(fn), 2);
    CHECK_STR(azf_function_method(fn, 1), "POST");
    CHECK_INT(azf_function_auth_level(fn), AZF_AUTH_ANONYMOUS);
    int32_t count;
    int64_t delay, mn, mx;
    CHECK_INT(azf_function_retry(fn, &count, &delay, &mn, &mx), AZF_RETRY_FIXED_DELAY);
    CHECK_INT(count, 3);
    CHECK_INT(delay, 5000);
    CHECK_STR(azf_function_property(fn, "worker_indexed"), "True");
    CHECK(azf_function_load_error(fn) == NULL);

    /* Without rawBindings each binding is serialised, unknown keys included. */
    CHECK_INT(add(reg,
                  "{\"name\":\"timer\",\"bindings\":[{\"name\":\"t\",\"type\":\"timerTrigger\","
                  "\"schedule\":\"0 */5 * * * *\",\"custom\":{\"x\":null}}],"
                  "\"retry\":{\"strategy\":\"ExponentialBackoff\",\"maxRetryCount\":-1,"
                  "\"minimumInterval\":\"00:00:01.5\",\"maximumInterval\":\"1.00:00:00\"}}"),
              0);
    fn = azf_registry_find(reg, "TIMER");
    CHECK_STR(azf_binding_json(azf_function_binding(fn, 0)),
              "{\"name\":\"t\",\"type\":\"timerTrigger\",\"schedule\":\"0 */5 * * * *\","
              "\"custom\":{\"x\":null}}");
    CHECK(azf_function_route(fn) == NULL);
    CHECK_STR(azf_function_id(fn), "");
    CHECK_INT(azf_function_retry(fn, &count, &delay, &mn, &mx), AZF_RETRY_EXPONENTIAL_BACKOFF);
    CHECK_INT(count, -1);
    CHECK_INT(mn, 1500);
    CHECK_INT(mx, 86400000);

    /* Bindings parsed from rawBindings alone (what the Python library produces). */
    CHECK_INT(add(reg, "{\"name\":\"rawonly\",\"rawBindings\":["
                       "\"{\\\"direction\\\": \\\"IN\\\", \\\"type\\\": \\\"queueTrigger\\\", "
                       "\\\"name\\\": \\\"m\\\"}\"]}"),
              0);
    fn = azf_registry_find(reg, "rawonly");
    CHECK_STR(azf_binding_type(azf_function_trigger(fn)), "queueTrigger");

    /* Names and ids are unique. */
    CHECK_INT(add(reg, HTTP_FN), AZF_E_EXISTS);
    CHECK_STR(azf_registry_errmsg(reg), "A function named 'Products' already exists.");
    CHECK_INT(add_with(reg, "v1fn", "{\"name\":\"q\",\"type\":\"queueTrigger\"}"), 0);
    CHECK_INT(azf_registry_bind_id(reg, "V1FN", "id-1"), AZF_E_EXISTS);
    CHECK_INT(azf_registry_bind_id(reg, "v1fn", "host-id"), 0);
    CHECK_STR(azf_function_id(azf_registry_find_id(reg, "host-id")), "host-id");
    CHECK_INT(azf_registry_bind_id(reg, "v1fn", "host-id"), 0);
    CHECK_INT(azf_registry_bind_id(reg, "v1fn", "other"), AZF_E_STATE);
    CHECK_INT(azf_registry_bind_id(reg, "nope", "x"), AZF_E_NOTFOUND);
    CHECK_INT(azf_registry_count(reg), 4);
    CHECK(azf_registry_at(reg, 4) == NULL);
    azf_registry_free(reg);
}

static void expect_error(const char *json, int code, const char *message)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    int rc = add(reg, json);
    CHECK_INT(rc, code);
    CHECK_STR(azf_registry_errmsg(reg), message);
    if (rc != code || strcmp(azf_registry_errmsg(reg), message) != 0)
        fprintf(stderr, "  for %s\n", json);
    CHECK_INT(azf_registry_count(reg), 0);
    azf_registry_free(reg);
}

static void test_validation(void)
{
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"b\",\"type\":\"blob\"}]}", AZF_E_PARSE,
                 "No trigger binding specified. A function must have a trigger input binding.");
    expect_error("{\"name\":\"f\",\"bindings\":[]}", AZF_E_PARSE,
                 "No trigger binding specified. A function must have a trigger input binding.");
    /* An out binding named like a trigger is not a trigger. */
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"b\",\"type\":\"queueTrigger\","
                 "\"direction\":\"out\"}]}",
                 AZF_E_PARSE,
                 "No trigger binding specified. A function must have a trigger input binding.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"a\",\"type\":\"queueTrigger\"},"
                 "{\"name\":\"b\",\"type\":\"TimerTRIGGER\"}]}",
                 AZF_E_PARSE,
                 "Multiple trigger bindings found ('a', 'b'). A function must have exactly one "
                 "trigger binding.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"a\",\"type\":\"queueTrigger\"},"
                 "{\"name\":\"A\",\"type\":\"blob\"}]}",
                 AZF_E_PARSE,
                 "Multiple bindings with name 'A' discovered. Binding names must be unique.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"a\",\"type\":\"queueTrigger\","
                 "\"direction\":\"sideways\"}]}",
                 AZF_E_PARSE,
                 "The binding 'a' has an invalid direction 'sideways'. Expected 'in', 'out' or "
                 "'inout'.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"a\",\"type\":\"queueTrigger\"},"
                 "{\"name\":\"$return\",\"type\":\"blob\",\"direction\":\"in\"}]}",
                 AZF_E_PARSE, "$return bindings must specify a direction of 'out'.");
    expect_error(
        "{\"name\":\"f\",\"bindings\":[{\"name\":\"bad-name\",\"type\":\"queueTrigger\"}]}",
        AZF_E_PARSE,
        "The binding name bad-name is invalid. Please assign a valid name to the "
        "binding.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"a\"}]}", AZF_E_PARSE,
                 "The binding 'a' has no type.");
    expect_error("{\"name\":\"host\",\"bindings\":[]}", AZF_E_PARSE,
                 "'host' is not a valid function name.");
    expect_error("{\"name\":\"9lives\",\"bindings\":[]}", AZF_E_PARSE,
                 "'9lives' is not a valid function name.");
    expect_error("{\"bindings\":[]}", AZF_E_PARSE, "'' is not a valid function name.");
    expect_error("[1]", AZF_E_PARSE, "The function metadata must be a JSON object.");
    expect_error("{\"name\":\"f\",", AZF_E_PARSE,
                 "The function metadata is not valid JSON (error at offset 12).");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"r\",\"type\":\"httpTrigger\","
                 "\"authLevel\":\"root\"}]}",
                 AZF_E_PARSE, "The binding 'r' has an invalid authLevel 'root'.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"r\",\"type\":\"httpTrigger\","
                 "\"route\":\"a/{id:nope}\"}]}",
                 AZF_E_PARSE,
                 "The route template 'a/{id:nope}' is invalid: the constraint reference 'nope' "
                 "could not be resolved.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":2}}",
                 AZF_E_PARSE, "retry.delayInterval is required for this strategy.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"sometimes\",\"maxRetryCount\":2}}",
                 AZF_E_PARSE, "retry.strategy must be 'fixed_delay' or 'exponential_backoff'.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":\"x\","
                 "\"delayInterval\":\"00:00:01\"}}",
                 AZF_E_PARSE, "retry.maxRetryCount must be an integer.");
    /* Numbers no integer type holds are range errors, never an undefined conversion
     * (UBSan's float-cast-overflow in the sanitizer build). */
    static const char *const huge[] = {"5.7e68", "1e19", "-1e300", "-2", "2147483648"};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        char meta[300];
        snprintf(meta, sizeof meta,
                 "{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":%s,"
                 "\"delayInterval\":\"00:00:01\"}}",
                 huge[i]);
        expect_error(meta, AZF_E_PARSE, "retry.maxRetryCount must be between -1 and 2147483647.");
    }
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":1.5,"
                 "\"delayInterval\":\"00:00:01\"}}",
                 AZF_E_PARSE, "retry.maxRetryCount must be an integer.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":1e999,"
                 "\"delayInterval\":\"00:00:01\"}}",
                 AZF_E_PARSE, "retry.maxRetryCount must be an integer."); /* infinity */
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"retry\":{\"strategy\":\"fixed_delay\",\"maxRetryCount\":1,"
                 "\"delayInterval\":\"00:61:00\"}}",
                 AZF_E_PARSE, "retry.delayInterval must be a time span such as \"00:00:05\".");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"properties\":{\"n\":1}}",
                 AZF_E_PARSE, "properties.n must be a string.");
    expect_error("{\"name\":\"f\",\"bindings\":[{\"name\":\"q\",\"type\":\"queueTrigger\"}],"
                 "\"rawBindings\":[]}",
                 AZF_E_PARSE, "rawBindings has 0 entries but bindings has 1.");
    expect_error("{\"name\":\"f\",\"rawBindings\":[\"{oops\"]}", AZF_E_PARSE,
                 "rawBindings[0] is not valid JSON.");
}

/* ---- routes ----------------------------------------------------------------------- */

static void route_ok(const char *tmpl, const char *path, const char *expect_values)
{
    azf__route *r;
    azf__errmsg err;
    int rc = azf__route_parse(&r, tmpl, &err);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "  %s: %s\n", tmpl, err.text);
        return;
    }
    azf_value_map *m = NULL;
    rc = azf__route_match(r, path, expect_values ? &m : NULL);
    if (rc != (expect_values ? 1 : 0))
        fprintf(stderr, "  route %s, path %s: got %d\n", tmpl, path, rc);
    CHECK_INT(rc, expect_values ? 1 : 0);
    if (rc == 1 && m) {
        char got[512] = "";
        for (size_t i = 0; i < azf_value_map_count(m); i++) {
            const char *k;
            const azf_value *v = azf_value_map_at(m, i, &k);
            size_t l = strlen(got);
            snprintf(got + l, sizeof got - l, "%s%s=%s", i ? "," : "", k,
                     (const char *)azf_value_data(v, NULL));
        }
        CHECK_STR(got, expect_values);
        azf_value_map_free(m);
    }
    azf__route_free(r);
}

static void route_bad(const char *tmpl, const char *message)
{
    azf__route *r = NULL;
    azf__errmsg err;
    CHECK_INT(azf__route_parse(&r, tmpl, &err), AZF_E_PARSE);
    CHECK(r == NULL);
    CHECK_STR(err.text, message);
}

static void test_routes(void)
{
    route_ok("products", "products", "");
    route_ok("products", "/PRODUCTS/", "");
    route_ok("products", "products?x=1", "");
    route_ok("products", "product", NULL);
    route_ok("products", "products/1", NULL);
    route_ok("/a/b", "a/b", "");
    route_ok("~/a/b", "a/b", "");
    route_ok("", "", "");
    route_ok("p/{id}", "p/hello%20world", "id=hello world");
    route_ok("p/{id}", "p/", NULL);
    route_ok("p/{id?}", "p", "");
    route_ok("p/{id=7}", "p", "id=7");
    route_ok("p/{id=7}", "p/8", "id=8");
    route_ok("files/{*path}", "files/a/b/c.txt", "path=a/b/c.txt");
    route_ok("files/{**path}", "files", "");
    route_ok("files/{*path=index}", "files", "path=index");
    route_ok("{{lit}}/{x}", "{lit}/1", "x=1");
    /* Constraints. */
    route_ok("n/{v:int}", "n/-2147483648", "v=-2147483648");
    route_ok("n/{v:int}", "n/2147483648", NULL);
    route_ok("n/{v:long}", "n/2147483648", "v=2147483648");
    route_ok("n/{v:long}", "n/9223372036854775808", NULL);
    route_ok("n/{v:bool}", "n/TRUE", "v=TRUE");
    route_ok("n/{v:bool}", "n/yes", NULL);
    route_ok("n/{v:guid}", "n/0f8fad5b-d9cb-469f-a165-70867728950e",
             "v=0f8fad5b-d9cb-469f-a165-70867728950e");
    route_ok("n/{v:guid}", "n/0f8fad5bd9cb469fa16570867728950e",
             "v=0f8fad5bd9cb469fa16570867728950e");
    route_ok("n/{v:guid}", "n/0f8fad5b-d9cb-469f-a165-70867728950", NULL);
    route_ok("n/{v:alpha}", "n/abcXYZ", "v=abcXYZ");
    route_ok("n/{v:alpha}", "n/abc1", NULL);
    route_ok("n/{v:double}", "n/-1.5e3", "v=-1.5e3");
    route_ok("n/{v:float}", "n/1.", "v=1.");
    route_ok("n/{v:decimal}", "n/1e3", NULL);
    route_ok("n/{v:decimal}", "n/12.50", "v=12.50");
    route_ok("n/{v:datetime}", "n/2024-02-29", "v=2024-02-29");
    route_ok("n/{v:datetime}", "n/2024-02-29T10:20:30.5Z", "v=2024-02-29T10:20:30.5Z");
    route_ok("n/{v:datetime}", "n/2024-13-01", NULL);
    route_ok("n/{v:minlength(3)}", "n/ab", NULL);
    route_ok("n/{v:minlength(3)}", "n/abc", "v=abc");
    route_ok("n/{v:maxlength(2)}", "n/abc", NULL);
    route_ok("n/{v:length(2)}", "n/ab", "v=ab");
    route_ok("n/{v:length(2,3)}", "n/abcd", NULL);
    route_ok("n/{v:length(1,2)}", "n/%C3%A9", "v=\xC3\xA9"); /* one character */
    route_ok("n/{v:min(10)}", "n/9", NULL);
    route_ok("n/{v:max(10)}", "n/10", "v=10");
    route_ok("n/{v:range(-5,5)}", "n/-5", "v=-5");
    route_ok("n/{v:range(-5,5)}", "n/6", NULL);
    route_ok("n/{v:int:min(3)}", "n/2", NULL);
    route_ok("n/{v:int:min(3)}", "n/4", "v=4");
    route_ok("n/{v:regex(^\\d{{3}}-\\d{{4}}$)}", "n/555-1234", "v=555-1234");
    route_ok("n/{v:regex(^\\d{{3}}-\\d{{4}}$)}", "n/5555-1234", NULL);
    route_ok("n/{v:regex(^(a|b)+$)}", "n/abba", "v=abba");
    route_ok("n/{v:required}", "n/x", "v=x");
    route_ok("n/{v:int?}", "n", "");

    route_bad("a//b", "The route template 'a//b' is invalid: the separator '/' cannot appear "
                      "twice in a row.");
    route_bad("a/{id", "The route template 'a/{id' is invalid: a '{' has no matching '}'.");
    route_bad("a/id}", "The route template 'a/id}' is invalid: a '}' has no matching '{'.");
    route_bad("a/{}", "The route template 'a/{}' is invalid: a route parameter has an empty "
                      "name.");
    route_bad("a/{id}/{ID}", "The route template 'a/{id}/{ID}' is invalid: the parameter name "
                             "'ID' appears more than once.");
    route_bad("{*rest}/x", "The route template '{*rest}/x' is invalid: the catch-all parameter "
                           "'rest' must be the last segment.");
    route_bad("{*rest?}", "The route template '{*rest?}' is invalid: the catch-all parameter "
                          "'rest' cannot be marked optional.");
    route_bad("{a?}/b", "The route template '{a?}/b' is invalid: the optional parameter 'a' can "
                        "only be followed by optional parameters.");
    route_bad("{a?=1}", "The route template '{a?=1}' is invalid: the optional parameter 'a' "
                        "cannot have a default value.");
    route_bad("a?b", "The route template 'a?b' is invalid: literal segments cannot contain '?'.");
    route_bad("x{a}", "The route template 'x{a}' is invalid: the segment 'x{a}' mixes literal "
                      "text and a parameter (complex segments are not supported).");
    route_bad("{a}{b}", "The route template '{a}{b}' is invalid: the segment '{a}{b}' has more "
                        "than one parameter (complex segments are not supported).");
    route_bad("{a:min}", "The route template '{a:min}' is invalid: the constraint 'min' needs an "
                         "argument.");
    route_bad("{a:min(x)}", "The route template '{a:min(x)}' is invalid: the constraint 'min' "
                            "needs integer arguments.");
    route_bad("{a:range(5,1)}", "The route template '{a:range(5,1)}' is invalid: the constraint "
                                "'range' has its minimum above its maximum.");
    route_bad("{a:int(3)}", "The route template '{a:int(3)}' is invalid: the constraint 'int' "
                            "takes no argument.");
    route_bad("{a:regex(()}", "The route template '{a:regex(()}' is invalid: the constraint of "
                              "parameter 'a' has an unbalanced '('.");
    route_bad("{a:regex([)}", "The route template '{a:regex([)}' is invalid: the regex "
                              "constraint pattern '[' is not supported.");
    route_bad("{a:regex(a+++)}", "The route template '{a:regex(a+++)}' is invalid: the regex "
                                 "constraint pattern 'a+++' is not supported.");
    route_bad("{a:regex(.*?x)}", "The route template '{a:regex(.*?x)}' is invalid: the regex "
                                 "constraint pattern '.*?x' is not supported.");
    route_bad("{a:regex((a{{50}}){{50}})}",
              "The route template '{a:regex((a{{50}}){{50}})}' is invalid: the regex constraint "
              "pattern '(a{50}){50}' is not supported.");
    route_ok("n/{v:regex([+*]{{2,3}}x)}", "n/+*x", "v=+*x");
    route_bad("{a:regex([\\d]+)}", "The route template '{a:regex([\\d]+)}' is invalid: the regex "
                                   "constraint pattern '[\\d]+' is not supported.");
    route_bad("~x", "The route template '~x' is invalid: a template starting with '~' must "
                    "continue with '/'.");
}

static void test_route_lookup(void)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    CHECK_INT(add(reg, HTTP_FN), 0);
    CHECK_INT(add_with(reg, "byid",
                       "{\"name\":\"r\",\"type\":\"httpTrigger\","
                       "\"route\":\"products/{category}/{id}\"}"),
              0);
    CHECK_INT(add_with(reg, "special",
                       "{\"name\":\"r\",\"type\":\"httpTrigger\","
                       "\"route\":\"products/special/{id}\"}"),
              0);
    CHECK_INT(add_with(reg, "rest",
                       "{\"name\":\"r\",\"type\":\"httpTrigger\","
                       "\"route\":\"{*all}\",\"methods\":[\"DELETE\"]}"),
              0);
    CHECK_INT(add_with(reg, "Hello", "{\"name\":\"r\",\"type\":\"httpTrigger\"}"), 0);
    CHECK_INT(add(reg, "{\"name\":\"off\",\"disabled\":\"true\",\"bindings\":[{\"name\":\"r\","
                       "\"type\":\"httpTrigger\",\"route\":\"off\"}]}"),
              0);
    CHECK(azf_function_is_disabled(azf_registry_find(reg, "off")));
    const azf_function *fn = NULL;
    azf_value_map *vals = NULL;
    /* Literal beats parameter; constrained beats plain. */
    CHECK_INT(azf_registry_match_route(reg, "GET", "products/special/1", &fn, &vals), 0);
    CHECK_STR(azf_function_name(fn), "special");
    CHECK_STR(azf_value_data(azf_value_map_get(vals, "id"), NULL), "1");
    azf_value_map_free(vals);
    CHECK_INT(azf_registry_match_route(reg, "get", "/products/books/5", &fn, &vals), 0);
    CHECK_STR(azf_function_name(fn), "Products");
    CHECK_STR(azf_value_data(azf_value_map_get(vals, "category"), NULL), "books");
    azf_value_map_free(vals);
    CHECK_INT(azf_registry_match_route(reg, "GET", "products/books", &fn, NULL), 0);
    CHECK_STR(azf_function_name(fn), "Products");
    /* "books1" fails alpha, so the plain parameter route takes it. */
    CHECK_INT(azf_registry_match_route(reg, "GET", "products/books1/x", &fn, NULL), 0);
    CHECK_STR(azf_function_name(fn), "byid");
    /* Methods: Products allows GET and POST only; PUT falls to nothing but the route
     * matched, so it is "method not allowed". */
    CHECK_INT(azf_registry_match_route(reg, "PUT", "products/books", &fn, NULL), AZF_E_UNSUPPORTED);
    CHECK_INT(azf_registry_match_route(reg, "DELETE", "products/books", &fn, NULL), 0);
    CHECK_STR(azf_function_name(fn), "rest");
    /* The default route is the function name, case-insensitively. */
    CHECK_INT(azf_registry_match_route(reg, "GET", "HELLO", &fn, NULL), 0);
    CHECK_STR(azf_function_name(fn), "Hello");
    /* The disabled function is skipped: the catch-all takes the path. */
    CHECK_INT(azf_registry_match_route(reg, "DELETE", "off", &fn, NULL), 0);
    CHECK_STR(azf_function_name(fn), "rest");
    CHECK_INT(azf_registry_match_route(reg, "GET", "nothing/here", &fn, NULL), AZF_E_UNSUPPORTED);
    azf_registry_free(reg);

    azf_registry_new(&reg);
    CHECK_INT(add_with(reg, "Hello", "{\"name\":\"r\",\"type\":\"httpTrigger\"}"), 0);
    CHECK_INT(add_with(reg, "queue", "{\"name\":\"r\",\"type\":\"queueTrigger\"}"), 0);
    CHECK_INT(azf_registry_match_route(reg, "GET", "nothing/here", &fn, NULL), AZF_E_NOTFOUND);
    CHECK_INT(azf_registry_match_route(reg, "GET", "queue", &fn, NULL), AZF_E_NOTFOUND);
    CHECK_INT(azf_registry_match_route(reg, "GET", "hello/", &fn, NULL), 0);
    azf_registry_free(reg);
}

/* ---- handlers and invocations --------------------------------------------------- */

typedef struct {
    int invoked, cancelled, released, completions, ran;
    int mode; /* 0: complete later, 1: complete inside invoke, 2: refuse, 3: in a thread */
    azf_invocation *pending;
} probe;

static void *complete_quietly(void *arg)
{
    azf_invocation_complete(arg);
    return NULL;
}

static int on_invoke(azf_invocation *inv, void *ud)
{
    probe *p = ud;
    p->invoked++;
    if (p->mode == 2)
        return AZF_E_USER;
    if (p->mode == 3) { /* no CHECK on that thread: the counters are the main thread's */
        pthread_t t;
        if (pthread_create(&t, NULL, complete_quietly, inv))
            return AZF_E_NOMEM;
        pthread_detach(t);
        return 0;
    }
    if (p->mode == 1) {
        azf_value *v;
        if (azf_value_new_string(&v, "done"))
            return azf_invocation_fail(inv, "MemoryError: ", "");
        if (azf_invocation_set_return(inv, v)) {
            azf_value_free(v);
            return azf_invocation_fail(inv, "MemoryError: ", "");
        }
        return azf_invocation_complete(inv);
    }
    p->pending = inv;
    return 0;
}

static void on_cancel(azf_invocation *inv, void *ud)
{
    probe *p = ud;
    p->cancelled++;
    CHECK(azf_invocation_cancel_requested(inv));
}

static void on_release(void *ud)
{
    ((probe *)ud)->released++;
}

static void on_complete(azf_invocation *inv, void *ud)
{
    probe *p = ud;
    p->completions++;
    CHECK(azf_invocation_status(inv) >= AZF_INVOCATION_SUCCEEDED);
}

static void *complete_in_thread(void *arg)
{
    azf_invocation *inv = arg;
    azf_value *v;
    azf_value_new_data(&v, AZF_VALUE_JSON, "[1]", 3);
    CHECK_INT(azf_invocation_set_output(inv, "msg", v), 0);
    CHECK_INT(azf_invocation_complete(inv), 0);
    return NULL;
}

static void test_invocations(void)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    azf_handler *h;
    CHECK_INT(azf_handler_new(&h), 0);
    azf_handler_set_invoke(h, on_invoke);
    azf_handler_set_cancel(h, on_cancel);
    azf_handler_set_release(h, on_release);
    probe p;
    memset(&p, 0, sizeof p);
    CHECK_INT(azf_registry_add(reg, HTTP_FN, h, &p), 0);
    azf_handler_free(h); /* copied by the registry */
    const azf_function *fn = azf_registry_find(reg, "Products");
    CHECK(azf_function_user_data(fn) == &p);

    /* Completed later from another thread, exactly once. */
    azf_invocation *inv;
    CHECK_INT(azf_invocation_new(&inv, fn, "inv-1"), 0);
    azf_value *req;
    azf_value_new_http(&req);
    CHECK_INT(azf_invocation_set_input(inv, "REQ", req), 0);
    azf_value *v;
    azf_value_new_null(&v);
    CHECK_INT(azf_invocation_set_input(inv, "msg", v), AZF_E_NOTFOUND); /* an output */
    CHECK_INT(azf_invocation_set_input(inv, "nope", v), AZF_E_NOTFOUND);
    azf_value_free(v);
    azf_value_map *tm;
    azf_value_map_new(&tm);
    CHECK_INT(azf_invocation_set_trigger_metadata(inv, tm), 0);
    CHECK_INT(azf_invocation_set_trace_context(inv, "00-abc-def-01", NULL, NULL), 0);
    CHECK_INT(azf_invocation_set_retry_context(inv, 1, 3, "ValueError: x", "stack"), 0);
    CHECK_INT(azf_invocation_set_on_complete(inv, on_complete, &p), 0);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_NEW);
    CHECK_INT(azf_invocation_complete(inv), AZF_E_STATE); /* not started */
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_INT(azf_invocation_start(inv), AZF_E_STATE);
    CHECK_INT(p.invoked, 1);
    CHECK(p.pending == inv);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_RUNNING);
    CHECK(azf_invocation_input(inv, "req") == req);
    CHECK_STR(azf_invocation_trace_parent(inv), "00-abc-def-01");
    CHECK_STR(azf_invocation_trace_state(inv), "");
    int32_t rc_count, rc_max;
    const char *rmsg;
    CHECK_INT(azf_invocation_retry_context(inv, &rc_count, &rc_max, &rmsg, NULL), 1);
    CHECK_STR(rmsg, "ValueError: x");
    azf_value *coll;
    azf_value_new_collection(&coll, AZF_VALUE_COLLECTION_STRING);
    CHECK_INT(azf_invocation_set_output(inv, "msg", coll), AZF_E_UNSUPPORTED);
    CHECK_INT(azf_invocation_set_return(inv, coll), AZF_E_UNSUPPORTED);
    azf_value_free(coll);
    azf_value_new_null(&v);
    CHECK_INT(azf_invocation_set_output(inv, "$return", v), AZF_E_NOTFOUND);
    CHECK_INT(azf_invocation_set_output(inv, "req", v), AZF_E_NOTFOUND);
    azf_value_free(v);
    CHECK_INT(azf_invocation_set_input(inv, "req", req), AZF_E_STATE);
    pthread_t t;
    pthread_create(&t, NULL, complete_in_thread, inv);
    pthread_join(t, NULL);
    CHECK_INT(p.completions, 1);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_SUCCEEDED);
    /* A second completion of any kind is refused and changes nothing. */
    CHECK_INT(azf_invocation_complete(inv), AZF_E_STATE);
    CHECK_INT(azf_invocation_fail(inv, "Exception: late", ""), AZF_E_STATE);
    CHECK_INT(azf_invocation_complete_cancelled(inv), AZF_E_STATE);
    CHECK_INT(azf_invocation_cancel(inv), AZF_E_STATE);
    CHECK_INT(p.completions, 1);
    CHECK_INT(p.cancelled, 0);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_SUCCEEDED);
    CHECK_STR(azf_value_data(azf_value_map_get(azf_invocation_outputs(inv), "msg"), NULL), "[1]");
    azf_value_new_null(&v);
    CHECK_INT(azf_invocation_set_output(inv, "msg", v), AZF_E_STATE);
    azf_value_free(v);

    /* The worker's response: the output goes to output_data, the status is Success. */
    AzureFunctionsRpcMessages__InvocationResponse resp =
        AZURE_FUNCTIONS_RPC_MESSAGES__INVOCATION_RESPONSE__INIT;
    CHECK_INT(azf__invocation_to_pb(inv, &resp), 0);
    CHECK_STR(resp.invocation_id, "inv-1");
    CHECK_INT(resp.result->status, AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Success);
    CHECK_INT(resp.n_output_data, 1);
    CHECK_STR(resp.output_data[0]->name, "msg");
    CHECK_STR(resp.output_data[0]->data->json, "[1]");
    CHECK(resp.return_value == NULL);
    size_t n = azure_functions_rpc_messages__invocation_response__get_packed_size(&resp);
    CHECK(n > 0);
    azf__invocation_response_clear(&resp);
    azf_invocation_free(inv);

    /* Cancel: the handler's cancel runs once, the handler completes as cancelled. */
    azf_invocation_new(&inv, fn, "inv-2");
    azf_invocation_set_on_complete(inv, on_complete, &p);
    azf_invocation_start(inv);
    CHECK_INT(azf_invocation_cancel(inv), 0);
    CHECK_INT(azf_invocation_cancel(inv), 0);
    CHECK_INT(p.cancelled, 1);
    /* The starter may drop its reference before completion. */
    azf_invocation_free(inv);
    CHECK_INT(azf_invocation_complete_cancelled(p.pending), 0);
    CHECK_INT(p.completions, 3 - 1);

    /* Completion inside invoke; the return value is kept. */
    p.mode = 1;
    azf_invocation_new(&inv, fn, "inv-3");
    azf_invocation_set_on_complete(inv, on_complete, &p);
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_SUCCEEDED);
    CHECK_STR(azf_value_data(azf_invocation_return_value(inv), NULL), "done");
    CHECK_INT(p.completions, 3);
    azf_invocation_free(inv);

    /* A refusing handler: the invocation fails, once. */
    p.mode = 2;
    azf_invocation_new(&inv, fn, "inv-4");
    azf_invocation_set_on_complete(inv, on_complete, &p);
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_FAILED);
    CHECK_STR(azf_invocation_error_message(inv),
              "the handler refused the invocation: aborted by a user callback");
    CHECK_INT(p.completions, 4);
    azf_invocation_free(inv);

    /* Failure with an error: the response carries the exception. */
    p.mode = 0;
    azf_invocation_new(&inv, fn, "inv-5");
    azf_invocation_start(inv);
    azf_value_new_string(&v, "dropped");
    CHECK_INT(azf_invocation_set_output(inv, "msg", v), 0);
    CHECK_INT(azf_invocation_fail(inv, "ValueError: bad input", "  File \"x.py\", line 1\n"), 0);
    CHECK_INT(azf_value_map_count(azf_invocation_outputs(inv)), 0);
    memset(&resp, 0, sizeof resp);
    resp = (AzureFunctionsRpcMessages__InvocationResponse)
        AZURE_FUNCTIONS_RPC_MESSAGES__INVOCATION_RESPONSE__INIT;
    CHECK_INT(azf__invocation_to_pb(inv, &resp), 0);
    CHECK_INT(resp.result->status, AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Failure);
    CHECK_STR(resp.result->exception->message, "ValueError: bad input");
    CHECK_STR(resp.result->exception->stack_trace, "  File \"x.py\", line 1\n");
    CHECK_INT(resp.n_output_data, 0);
    azf__invocation_response_clear(&resp);
    azf_invocation_free(inv);

    /* A function without a handler fails at once. */
    CHECK_INT(add_with(reg, "nohandler", "{\"name\":\"q\",\"type\":\"queueTrigger\"}"), 0);
    azf_invocation_new(&inv, azf_registry_find(reg, "nohandler"), "inv-6");
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_STR(azf_invocation_error_message(inv),
              "FunctionLoadError: the function 'nohandler' has no handler");
    azf_invocation_free(inv);

    CHECK_INT(p.released, 0);
    azf_registry_free(reg);
    CHECK_INT(p.released, 1);
}

/* Many threads complete and cancel the same invocations at once: one completion each. */
typedef struct {
    azf_invocation *inv;
    int which;
} racer;

static void *race(void *arg)
{
    racer *r = arg;
    switch (r->which % 4) {
    case 0:
        azf_invocation_complete(r->inv);
        break;
    case 1:
        azf_invocation_fail(r->inv, "Exception: x", "");
        break;
    case 2:
        azf_invocation_complete_cancelled(r->inv);
        break;
    default:
        azf_invocation_cancel(r->inv);
        break;
    }
    return NULL;
}

/* The handler's run callback: completes on the caller's thread. */
static int on_run(azf_invocation *inv, void *ud)
{
    probe *p = ud;
    p->ran++;
    return azf_invocation_complete(inv);
}

static void test_invocation_run(void)
{
    /* Without a run callback: invoke, then run waits for the completion that another
     * thread makes. */
    azf_registry *reg;
    azf_registry_new(&reg);
    azf_handler *h;
    CHECK_INT(azf_handler_new(&h), 0);
    azf_handler_set_invoke(h, on_invoke);
    probe p;
    memset(&p, 0, sizeof p);
    CHECK_INT(azf_registry_add(reg, HTTP_FN, h, &p), 0);
    const azf_function *fn = azf_registry_find(reg, "Products");
    p.mode = 3; /* complete_in_thread */
    azf_invocation *inv;
    CHECK_INT(azf_invocation_new(&inv, fn, "run-1"), 0);
    CHECK_INT(azf_invocation_set_on_complete(inv, on_complete, &p), 0);
    CHECK_INT(azf_invocation_run(inv), 0);
    CHECK_INT(p.completions, 1); /* the callback returned before run did */
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_SUCCEEDED);
    CHECK_INT(azf_invocation_run(inv), AZF_E_STATE);
    azf_invocation_free(inv);
    CHECK_INT(azf_invocation_run(NULL), AZF_E_INVALID);

    /* With one: run uses it, start still uses invoke. */
    azf_handler_set_run(h, on_run);
    CHECK_INT(azf_handler_set_run(NULL, on_run), AZF_E_INVALID);
    azf_registry *reg2;
    azf_registry_new(&reg2);
    probe q;
    memset(&q, 0, sizeof q);
    q.mode = 1;
    CHECK_INT(azf_registry_add(reg2, HTTP_FN, h, &q), 0);
    fn = azf_registry_find(reg2, "Products");
    CHECK_INT(azf_invocation_new(&inv, fn, "run-2"), 0);
    CHECK_INT(azf_invocation_run(inv), 0);
    CHECK_INT(q.ran, 1);
    CHECK_INT(q.invoked, 0);
    CHECK_INT(azf_invocation_status(inv), AZF_INVOCATION_SUCCEEDED);
    azf_invocation_free(inv);
    CHECK_INT(azf_invocation_new(&inv, fn, "run-3"), 0);
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_INT(q.invoked, 1);
    CHECK_INT(q.ran, 1);
    azf_invocation_free(inv);
    azf_handler_free(h);
    azf_registry_free(reg2);
    azf_registry_free(reg);
}

static void test_exactly_once_under_races(void)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    azf_handler *h;
    azf_handler_new(&h);
    azf_handler_set_invoke(h, on_invoke);
    azf_handler_set_cancel(h, on_cancel);
    probe p;
    memset(&p, 0, sizeof p);
    azf_registry_add(reg, HTTP_FN, h, &p);
    azf_handler_free(h);
    const azf_function *fn = azf_registry_find(reg, "Products");
    for (int round = 0; round < 50; round++) {
        azf_invocation *inv;
        azf_invocation_new(&inv, fn, "race");
        azf_invocation_set_on_complete(inv, on_complete, &p);
        azf_invocation_start(inv);
        pthread_t t[8];
        racer r[8];
        for (int i = 0; i < 8; i++) {
            r[i].inv = inv;
            r[i].which = i + round;
            pthread_create(&t[i], NULL, race, &r[i]);
        }
        for (int i = 0; i < 8; i++)
            pthread_join(t[i], NULL);
        CHECK_INT(p.completions, round + 1);
        azf_invocation_free(inv);
    }
    azf_registry_free(reg);
}

/* ---- invocation logs: every accepted record reaches the starter before completion ---- */

typedef struct log_probe {
    pthread_mutex_t lock;
    int delivered;           /* records seen by the starter's log callback */
    int delivered_at_finish; /* the same count when the completion callback ran */
    int accepted;            /* records azf_invocation_log returned 0 for */
    int completed;
    char last_category[32];
} log_probe;

static void on_inv_log(azf_invocation *inv, int level, const char *category, const char *message,
                       void *ud)
{
    log_probe *lp = ud;
    (void)inv;
    (void)message;
    if (level != AZF_LOG_WARNING)
        return;
    pthread_mutex_lock(&lp->lock);
    lp->delivered++;
    snprintf(lp->last_category, sizeof lp->last_category, "%s", category);
    pthread_mutex_unlock(&lp->lock);
}

static void on_log_complete(azf_invocation *inv, void *ud)
{
    log_probe *lp = ud;
    (void)inv;
    pthread_mutex_lock(&lp->lock);
    lp->delivered_at_finish = lp->delivered;
    lp->completed++;
    pthread_mutex_unlock(&lp->lock);
}

typedef struct log_racer {
    azf_invocation *inv;
    log_probe *lp;
} log_racer;

static void *log_until_refused(void *arg)
{
    log_racer *r = arg;
    for (;;) {
        int rc = azf_invocation_log(r->inv, AZF_LOG_WARNING, "user.logger", "hello");
        if (rc != 0)
            break;
        pthread_mutex_lock(&r->lp->lock);
        r->lp->accepted++;
        pthread_mutex_unlock(&r->lp->lock);
    }
    return NULL;
}

/* A registry with HTTP_FN ("Products") whose handler is on_invoke with probe p. */
static const azf_function *products(azf_registry **reg, probe *p)
{
    azf_registry_new(reg);
    azf_handler *h;
    azf_handler_new(&h);
    azf_handler_set_invoke(h, on_invoke);
    memset(p, 0, sizeof *p);
    azf_registry_add(*reg, HTTP_FN, h, p);
    azf_handler_free(h);
    return azf_registry_find(*reg, "Products");
}

static void test_invocation_logs(void)
{
    azf_registry *reg;
    probe p;
    const azf_function *fn = products(&reg, &p);
    for (int round = 0; round < 20; round++) {
        log_probe lp;
        memset(&lp, 0, sizeof lp);
        pthread_mutex_init(&lp.lock, NULL);
        azf_invocation *inv;
        azf_invocation_new(&inv, fn, "logs");
        CHECK_INT(azf_invocation_set_on_log(inv, on_inv_log, &lp), 0);
        azf_invocation_set_on_complete(inv, on_log_complete, &lp);
        CHECK_INT(azf_invocation_log(inv, AZF_LOG_WARNING, "x", "before start"), AZF_E_STATE);
        azf_invocation_start(inv);
        CHECK_INT(azf_invocation_set_on_log(inv, on_inv_log, &lp), AZF_E_STATE);
        log_racer r[3] = {{inv, &lp}, {inv, &lp}, {inv, &lp}};
        pthread_t t[3];
        for (int i = 0; i < 3; i++)
            pthread_create(&t[i], NULL, log_until_refused, &r[i]);
        CHECK_INT(azf_invocation_log(inv, AZF_LOG_WARNING, "user.logger", "one"), 0);
        pthread_mutex_lock(&lp.lock);
        lp.accepted++;
        pthread_mutex_unlock(&lp.lock);
        azf_invocation_complete(inv);
        for (int i = 0; i < 3; i++)
            pthread_join(t[i], NULL);
        CHECK_INT(lp.completed, 1);
        CHECK_INT(lp.delivered_at_finish, lp.accepted);
        CHECK_INT(lp.delivered, lp.accepted);
        CHECK_STR(lp.last_category, "user.logger");
        CHECK_INT(azf_invocation_log(inv, AZF_LOG_WARNING, "x", "after"), AZF_E_STATE);
        CHECK_INT(azf_invocation_log(NULL, AZF_LOG_WARNING, "x", "y"), AZF_E_INVALID);
        azf_invocation_free(inv);
        pthread_mutex_destroy(&lp.lock);
    }
    azf_registry_free(reg);
}

/* Text holding NUL: the worker's log callback and the response get it whole; a
 * NUL-terminated log callback and the error accessors see it up to the NUL. */
static char g_log[16], g_cut[16];
static size_t g_log_len;

static void on_log_len(azf_invocation *inv, int level, const char *category, const char *message,
                       size_t len, void *ud)
{
    (void)inv, (void)level, (void)category, (void)ud;
    g_log_len = len;
    memcpy(g_log, message, len < sizeof g_log ? len : sizeof g_log);
}

static void on_log_cut(azf_invocation *inv, int level, const char *category, const char *message,
                       void *ud)
{
    (void)inv, (void)level, (void)category, (void)ud;
    snprintf(g_cut, sizeof g_cut, "%s", message);
}

static int has_bytes(const azf_buf *b, const char *needle, size_t n)
{
    for (size_t i = 0; i + n <= b->size; i++)
        if (memcmp(b->ptr + i, needle, n) == 0)
            return 1;
    return 0;
}

static void test_nul_text(void)
{
    azf_registry *reg;
    probe p;
    const azf_function *fn = products(&reg, &p);

    azf_invocation *inv;
    CHECK_INT(azf_invocation_new(&inv, fn, "nul"), 0);
    CHECK_INT(azf__invocation_set_on_log_len(inv, on_log_len, NULL), 0);
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_INT(azf_invocation_log_len(inv, AZF_LOG_INFO, "c", "a\0b", 3), 0);
    CHECK(g_log_len == 3 && memcmp(g_log, "a\0b", 3) == 0);
    CHECK_INT(azf_invocation_fail_len(inv, "E: x\0y", 6, "s\0t", 3), 0);
    size_t mlen, slen;
    const char *stack, *message = azf__invocation_error_text(inv, &mlen, &stack, &slen);
    CHECK(mlen == 6 && memcmp(message, "E: x\0y", 6) == 0 && slen == 3);
    CHECK_STR(azf_invocation_error_message(inv), "E: x");
    AZF__PB(InvocationResponse) resp = AZF__PB_INIT(INVOCATION_RESPONSE);
    CHECK_INT(azf__invocation_to_pb(inv, &resp), 0);
    azf_buf wire = AZF_BUF_INIT;
    CHECK_INT(azf__codec_pack(&wire, &resp.base), 0);
    /* RpcException.message (2) and .stack_trace (1), whole. */
    CHECK(has_bytes(&wire,
                    "\x12\x06"
                    "E: x\0y",
                    8));
    CHECK(has_bytes(&wire,
                    "\x0a\x03"
                    "s\0t",
                    5));
    azf__invocation_response_clear(&resp);
    azf_buf_dispose(&wire);
    azf_invocation_free(inv);

    CHECK_INT(azf_invocation_new(&inv, fn, "cut"), 0);
    CHECK_INT(azf_invocation_set_on_log(inv, on_log_cut, NULL), 0);
    CHECK_INT(azf_invocation_start(inv), 0);
    CHECK_INT(azf_invocation_log_len(inv, AZF_LOG_INFO, "c", "a\0b", 3), 0);
    CHECK_STR(g_cut, "a");
    CHECK_INT(azf_invocation_complete(inv), 0);
    azf_invocation_free(inv);
    azf_registry_free(reg);
}

/* ---- RpcFunctionMetadata and InvocationRequest -------------------------------------- */

static void test_metadata_pb(void)
{
    azf_registry *reg;
    azf_registry_new(&reg);
    add(reg, HTTP_FN);
    const azf_function *fn = azf_registry_find(reg, "Products");
    azf__pb_function_metadata md = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_FUNCTION_METADATA__INIT;
    CHECK_INT(azf__function_to_pb(fn, &md), 0);
    size_t n = azure_functions_rpc_messages__rpc_function_metadata__get_packed_size(&md);
    uint8_t *buf = malloc(n);
    azure_functions_rpc_messages__rpc_function_metadata__pack(&md, buf);
    azf__function_metadata_clear(&md);
    azf__pb_function_metadata *u =
        azure_functions_rpc_messages__rpc_function_metadata__unpack(NULL, n, buf);
    free(buf);
    CHECK(u != NULL);
    if (u) {
        CHECK_STR(u->name, "Products");
        CHECK_STR(u->function_id, "id-1");
        CHECK_STR(u->language, "python");
        CHECK_STR(u->script_file, "function_app.py");
        CHECK_INT(u->n_raw_bindings, 3);
        CHECK_STR(u->raw_bindings[2], "{\"raw\":2}");
        CHECK_INT(u->n_bindings, 3);
        CHECK_STR(u->bindings[2]->key, "msg");
        CHECK_STR(u->bindings[2]->value->type, "queue");
        CHECK_INT(u->bindings[2]->value->direction,
                  AZURE_FUNCTIONS_RPC_MESSAGES__BINDING_INFO__DIRECTION__out);
        CHECK_INT(u->bindings[2]->value->data_type,
                  AZURE_FUNCTIONS_RPC_MESSAGES__BINDING_INFO__DATA_TYPE__string);
        CHECK(u->retry_options != NULL);
        if (u->retry_options) {
            CHECK_INT(u->retry_options->retry_strategy,
                      AZURE_FUNCTIONS_RPC_MESSAGES__RPC_RETRY_OPTIONS__RETRY_STRATEGY__fixed_delay);
            CHECK_INT(u->retry_options->max_retry_count, 3);
            CHECK_INT(u->retry_options->delay_interval->seconds, 5);
        }
        CHECK_INT(u->n_properties, 1);
        CHECK_STR(u->properties[0]->key, "worker_indexed");
        CHECK_INT(u->status->status, AZURE_FUNCTIONS_RPC_MESSAGES__STATUS_RESULT__STATUS__Success);
        azure_functions_rpc_messages__rpc_function_metadata__free_unpacked(u, NULL);
    }

    /* An InvocationRequest as the host sends it, decoded without copies. */
    AzureFunctionsRpcMessages__TypedData body = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    body.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_BYTES;
    body.bytes.data = (uint8_t *)"hi";
    body.bytes.len = 2;
    AzureFunctionsRpcMessages__RpcHttp http = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_HTTP__INIT;
    http.method = "GET";
    http.body = &body;
    AzureFunctionsRpcMessages__TypedData td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    td.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_HTTP;
    td.http = &http;
    AzureFunctionsRpcMessages__ParameterBinding pb =
        AZURE_FUNCTIONS_RPC_MESSAGES__PARAMETER_BINDING__INIT;
    pb.name = "req";
    pb.rpc_data_case = AZURE_FUNCTIONS_RPC_MESSAGES__PARAMETER_BINDING__RPC_DATA_DATA;
    pb.data = &td;
    AzureFunctionsRpcMessages__ParameterBinding *inputs[] = {&pb};
    AzureFunctionsRpcMessages__TypedData q = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    q.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_JSON;
    q.json = "{\"x\":1}";
    AzureFunctionsRpcMessages__InvocationRequest__TriggerMetadataEntry e =
        AZURE_FUNCTIONS_RPC_MESSAGES__INVOCATION_REQUEST__TRIGGER_METADATA_ENTRY__INIT;
    e.key = "Query";
    e.value = &q;
    AzureFunctionsRpcMessages__InvocationRequest__TriggerMetadataEntry *entries[] = {&e};
    AzureFunctionsRpcMessages__RpcTraceContext__AttributesEntry attr =
        AZURE_FUNCTIONS_RPC_MESSAGES__RPC_TRACE_CONTEXT__ATTRIBUTES_ENTRY__INIT;
    attr.key = "ProcessId";
    attr.value = "42";
    AzureFunctionsRpcMessages__RpcTraceContext__AttributesEntry *attrs[] = {&attr};
    AzureFunctionsRpcMessages__RpcTraceContext tc =
        AZURE_FUNCTIONS_RPC_MESSAGES__RPC_TRACE_CONTEXT__INIT;
    tc.trace_parent = "00-1-2-01";
    tc.n_attributes = 1;
    tc.attributes = attrs;
    AzureFunctionsRpcMessages__InvocationRequest req =
        AZURE_FUNCTIONS_RPC_MESSAGES__INVOCATION_REQUEST__INIT;
    req.invocation_id = "inv-9";
    req.function_id = "id-1";
    req.n_input_data = 1;
    req.input_data = inputs;
    req.n_trigger_metadata = 1;
    req.trigger_metadata = entries;
    req.trace_context = &tc;
    azf_invocation *inv;
    CHECK_INT(azf__invocation_from_pb(&inv, fn, &req, AZF__MARSHAL_BORROW, NULL), 0);
    CHECK_STR(azf_invocation_id(inv), "inv-9");
    const azf_value *in = azf_invocation_input(inv, "req");
    CHECK_STR(azf_value_http_method(in), "GET");
    CHECK(azf_value_data(azf_value_http_body(in), NULL) == (const void *)body.bytes.data);
    CHECK_STR(
        azf_value_data(azf_value_map_get(azf_invocation_trigger_metadata(inv), "Query"), NULL),
        "{\"x\":1}");
    CHECK_STR(azf_invocation_trace_parent(inv), "00-1-2-01");
    CHECK_STR(
        azf_value_data(azf_value_map_get(azf_invocation_trace_attributes(inv), "ProcessId"), NULL),
        "42");
    CHECK_INT(azf_invocation_retry_context(inv, NULL, NULL, NULL, NULL), 0);
    azf_invocation_free(inv);
    azf_registry_free(reg);
}

/* ---- allocation failures ------------------------------------------------------------ */

static long g_live, g_count, g_fail_at;

static void *t_malloc(size_t n, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count >= g_fail_at)
        return NULL;
    void *p = malloc(n);
    g_live += p != NULL;
    return p;
}
static void t_free(void *p, void *ud)
{
    (void)ud;
    g_live -= p != NULL;
    free(p);
}
static void *t_calloc(size_t n, size_t sz, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count >= g_fail_at)
        return NULL;
    void *p = calloc(n, sz);
    g_live += p != NULL;
    return p;
}
static void *t_realloc(void *p, size_t sz, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count >= g_fail_at)
        return NULL;
    void *q = realloc(p, sz);
    g_live += q && !p;
    return q;
}

/* Registration, lookup, metadata conversion and one invocation with the Nth allocation
 * failing: each step works or says AZF_E_NOMEM, and nothing leaks. */
static int registry_flow(void)
{
    azf_registry *reg = NULL;
    azf_handler *h = NULL;
    azf_invocation *inv = NULL;
    azf_value *v = NULL;
    azf_value_map *vals = NULL;
    azf__pb_function_metadata md = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_FUNCTION_METADATA__INIT;
    AzureFunctionsRpcMessages__InvocationResponse resp =
        AZURE_FUNCTIONS_RPC_MESSAGES__INVOCATION_RESPONSE__INIT;
    probe p;
    memset(&p, 0, sizeof p);
    p.mode = 1;
    const azf_function *fn;
    int rc;
    if ((rc = azf_registry_new(&reg)) || (rc = azf_handler_new(&h)) ||
        (rc = azf_handler_set_invoke(h, on_invoke)) || (rc = azf_registry_add(reg, HTTP_FN, h, &p)))
        goto out;
    fn = azf_registry_find(reg, "Products");
    if ((rc = azf_registry_match_route(reg, "GET", "products/a/1", &fn, &vals)) ||
        (rc = azf__function_to_pb(fn, &md)))
        goto out;
    if ((rc = azf_invocation_new(&inv, fn, "id")) || (rc = azf_value_new_http(&v)) ||
        (rc = azf_invocation_set_input(inv, "req", v)))
        goto out;
    v = NULL;
    if ((rc = azf_invocation_start(inv)))
        goto out;
    /* The handler's own allocations may fail too: then the invocation failed. */
    if (azf_invocation_status(inv) == AZF_INVOCATION_SUCCEEDED &&
        !azf_invocation_return_value(inv)) {
        rc = -1000;
        goto out;
    }
    rc = azf__invocation_to_pb(inv, &resp);
out:
    azf__invocation_response_clear(&resp);
    azf__function_metadata_clear(&md);
    azf_value_free(v);
    azf_value_map_free(vals);
    azf_invocation_free(inv);
    azf_handler_free(h);
    azf_registry_free(reg);
    return rc;
}

static void test_allocation_failures(void)
{
    azf_mem m = {NULL, t_malloc, t_free, t_calloc, t_realloc};
    CHECK_INT(azf_set_allocator(&m), 0);
    g_fail_at = 0;
    g_live = 0;
    CHECK_INT(registry_flow(), 0);
    CHECK_INT(g_live, 0);
    int nomem = 0, ok = 0, other = 0;
    for (long n = 1; n < 300; n++) {
        g_count = 0;
        g_fail_at = n;
        g_live = 0;
        int rc = registry_flow();
        nomem += rc == AZF_E_NOMEM;
        ok += rc == 0;
        other += rc != 0 && rc != AZF_E_NOMEM;
        if (rc != 0 && rc != AZF_E_NOMEM)
            fprintf(stderr, "allocation %ld failing gave %d\n", n, rc);
        if (g_live != 0)
            fprintf(stderr, "leak with allocation %ld failing: %ld live\n", n, g_live);
        CHECK_INT(g_live, 0);
    }
    g_fail_at = 0;
    CHECK(nomem > 20);
    CHECK(ok > 0);
    CHECK_INT(other, 0);
    CHECK_INT(azf_set_allocator(NULL), 0);
}

int main(void)
{
    RUN(test_contract());
    RUN(test_validation());
    RUN(test_routes());
    RUN(test_route_lookup());
    RUN(test_invocations());
    RUN(test_invocation_run());
    RUN(test_exactly_once_under_races());
    RUN(test_invocation_logs());
    RUN(test_nul_text());
    RUN(test_metadata_pb());
    RUN(test_allocation_failures());
    TEST_MAIN_END();
}
