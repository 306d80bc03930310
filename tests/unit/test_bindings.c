/* Binding data and binding expressions of `azfunc start` (src/host/binding_data.c). */
#include "azf_test.h"
#include "host/bindings.h"

#include <stdlib.h>
#include <string.h>

static char *resolve(const char *tmpl, const cJSON *data, int *rc)
{
    char *out = NULL;
    azf__errmsg err = {{0}};
    *rc = azf__expr_resolve(tmpl, data, &out, &err);
    return *rc == 0 ? out : azf__strdup(err.text);
}

static void test_expressions(void)
{
    cJSON *data = cJSON_Parse("{\"Id\":\"m-1\",\"DequeueCount\":3,\"order\":{\"id\":\"o7\"},"
                              "\"flag\":true,\"name\":\"a b\"}");
    int rc;
    char *s;
    setenv("AZF_TEST_QUEUE", "work", 1);
    s = resolve("%AZF_TEST_QUEUE%-out/{id}-{DequeueCount}.txt", data, &rc);
    CHECK_INT(rc, 0);
    CHECK_STR(s, "work-out/m-1-3.txt"); /* names are case-insensitive */
    azf__free(s);
    s = resolve("{order.id}/{flag}/{name}", data, &rc);
    CHECK_STR(s, "o7/True/a b");
    azf__free(s);
    s = resolve("x/{missing}", data, &rc);
    CHECK_INT(rc, AZF_E_NOTFOUND);
    CHECK_STR(s, "No value for named parameter 'missing'.");
    azf__free(s);
    s = resolve("%AZF_TEST_NOT_SET%", data, &rc);
    CHECK_INT(rc, AZF_E_NOTFOUND);
    CHECK(strstr(s, "AZF_TEST_NOT_SET") != NULL);
    azf__free(s);
    s = resolve("{rand-guid}", data, &rc);
    CHECK_INT(rc, 0);
    CHECK_INT(strlen(s), 36);
    CHECK(s[14] == '4');
    azf__free(s);
    s = resolve("logs/{DateTime}.txt", data, &rc);
    CHECK_INT(rc, 0);
    CHECK_INT(strlen(s), strlen("logs/2024-01-31T12-00-00Z.txt"));
    CHECK(strchr(s, ':') == NULL);
    azf__free(s);
    /* without data only the settings resolve: the tokens stay for the trigger */
    s = resolve("%AZF_TEST_QUEUE%/{name}.txt", NULL, &rc);
    CHECK_STR(s, "work/{name}.txt");
    azf__free(s);
    s = resolve("a/{unclosed", data, &rc);
    CHECK_INT(rc, AZF_E_PARSE);
    azf__free(s);
    cJSON_Delete(data);
}

static void test_path_match(void)
{
    cJSON *t = cJSON_CreateObject();
    CHECK(azf__path_match("in/{name}.txt", "in/report.txt", t));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")), "report");
    cJSON_Delete(t);
    t = cJSON_CreateObject();
    CHECK(azf__path_match("{year}/{name}.{ext}", "2024/a.b.csv", t));
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "year")), "2024");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "name")), "a");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(t, "ext")), "b.csv");
    cJSON_Delete(t);
    t = cJSON_CreateObject();
    CHECK(!azf__path_match("in/{name}.txt", "in/report.bin", t));
    CHECK(!azf__path_match("in/{name}.txt", "out/report.txt", t));
    CHECK(!azf__path_match("in/{name}.txt", "in/.txt", t)); /* a token is never empty */
    cJSON_Delete(t);
}

static void test_binding_data(void)
{
    azf_value_map *md = NULL;
    azf_value *v = NULL, *payload = NULL;
    azf_value_map_new(&md);
    azf_value_new_string(&v, "guid-1");
    azf_value_map_set(md, "Id", v);
    azf_value_new_data(&v, AZF_VALUE_JSON, "\"2024-01-31T12:00:00+00:00\"", 27);
    azf_value_map_set(md, "InsertionTime", v);
    azf_value_new_string(&payload, "{\"id\":\"o1\",\"n\":2}");
    cJSON *d = azf__binding_data_new(NULL, payload, md);
    /* the payload's own "id" wins over the metadata's "Id" */
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(d, "id")), "o1");
    CHECK_STR(cJSON_GetStringValue(cJSON_GetObjectItem(d, "InsertionTime")),
              "2024-01-31T12:00:00+00:00");
    CHECK(cJSON_GetObjectItem(cJSON_GetObjectItem(d, "sys"), "RandGuid") != NULL);
    cJSON_Delete(d);
    azf_value_free(payload);
    azf_value_map_free(md);
}

static void test_base64(void)
{
    char *e = azf__base64("hello", 5);
    CHECK_STR(e, "aGVsbG8=");
    azf_buf out = AZF_BUF_INIT;
    CHECK_INT(azf__unbase64(e, &out), 0);
    CHECK_STR(out.ptr, "hello");
    CHECK_INT(out.size, 5);
    CHECK_INT(azf__unbase64("not base64!", &out), -1);
    CHECK_INT(azf__unbase64("abc", &out), -1);
    azf_buf_dispose(&out);
    azf__free(e);
}

int main(void)
{
    test_expressions();
    test_path_match();
    test_binding_data();
    test_base64();
    TEST_MAIN_END();
}
