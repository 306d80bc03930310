/* host.json and local.settings.json parsing (src/host/settings.c). */
#include "host/host_internal.h"

#include "azf_test.h"

#include <string.h>

static int host_json(azf__settings *s, const char *text, azf__errmsg *err)
{
    return azf__settings_parse_host_json(s, "host.json", text, strlen(text), err);
}

static int local_json(azf__settings *s, const char *text, azf__errmsg *err)
{
    return azf__settings_parse_local(s, "local.settings.json", text, strlen(text), err);
}

int main(void)
{
    azf__settings s;
    azf__errmsg err = {{0}};
    azf__settings_init(&s);

    CHECK_INT(host_json(&s, "{\"version\": \"2.0\"}", &err), 0);
    CHECK(s.route_prefix == NULL);
    CHECK_INT(s.log_level, AZF_LOG_INFO);
    CHECK_INT(host_json(&s,
                        "{\"extensions\": {\"http\": {\"routePrefix\": \"/v1/\"}},"
                        " \"logging\": {\"logLevel\": {\"default\": \"warning\", "
                        "\"Function\": \"Debug\"}}}",
                        &err),
              0);
    CHECK_STR(s.route_prefix, "v1");
    CHECK_INT(s.log_level, AZF_LOG_WARNING);
    CHECK_INT(s.function_log_level, AZF_LOG_DEBUG);
    CHECK_INT(host_json(&s, "{\"extensions\": {\"http\": {\"routePrefix\": \"\"}}}", &err), 0);
    CHECK_STR(s.route_prefix, "");

    /* Precise positions for syntax errors, paths for type errors. */
    CHECK_INT(host_json(&s, "{\n  \"version\": \"2.0\",\n  oops\n}", &err), AZF_E_PARSE);
    CHECK_STR(err.text, "host.json:3:3: invalid JSON");
    CHECK_INT(host_json(&s, "[]", &err), AZF_E_PARSE);
    CHECK_STR(err.text, "host.json: the top level must be a JSON object.");
    CHECK_INT(host_json(&s, "{\"extensions\": {\"http\": {\"routePrefix\": 5}}}", &err),
              AZF_E_PARSE);
    CHECK_STR(err.text, "host.json: extensions.http.routePrefix must be a string");
    CHECK_INT(host_json(&s, "{\"logging\": {\"logLevel\": {\"default\": \"Loud\"}}}", &err),
              AZF_E_PARSE);
    CHECK(strstr(err.text, "logging.logLevel.default must be one of") != NULL);

    /* The runner's limits: -1 where unset; durations as TimeSpans. */
    CHECK(s.function_timeout_ms == -1 && s.max_header_count == -1 && s.read_timeout_ms == -1);
    CHECK_INT(host_json(&s,
                        "{\"functionTimeout\": \"00:05:00\", \"extensions\": {\"http\": "
                        "{\"maxRequestHeaderCount\": 50, \"maxRequestBodySize\": 1024, "
                        "\"requestTimeout\": \"00:00:10\", \"keepAliveTimeout\": \"00:02:00\"}}}",
                        &err),
              0);
    CHECK(s.function_timeout_ms == 300000 && s.max_header_count == 50 && s.max_body == 1024);
    CHECK(s.read_timeout_ms == 10000 && s.keep_alive_timeout_ms == 120000);
    CHECK(s.max_header_bytes == -1 && s.max_connections == -1);
    CHECK_INT(host_json(&s, "{\"functionTimeout\": \"-1\"}", &err), 0);
    CHECK(s.function_timeout_ms == 0);
    CHECK_INT(host_json(&s, "{\"functionTimeout\": \"5 minutes\"}", &err), AZF_E_PARSE);
    CHECK_STR(err.text, "host.json: functionTimeout must be a duration \"hh:mm:ss\" or \"-1\"");
    CHECK_INT(host_json(&s, "{\"extensions\": {\"http\": {\"maxRequestLineSize\": 0}}}", &err),
              AZF_E_PARSE);
    CHECK_STR(err.text, "host.json: extensions.http.maxRequestLineSize must be a positive whole "
                        "number");
    CHECK_INT(host_json(&s, "{\"extensions\": {\"http\": {\"keepAliveTimeout\": \"-1\"}}}", &err),
              AZF_E_PARSE);

    CHECK_INT(local_json(&s,
                         "{\"IsEncrypted\": false, \"Values\": {\"A\": \"1\", \"B\": 2, \"C\": "
                         "true}, \"ConnectionStrings\": {\"Db\": \"x\"}}",
                         &err),
              0);
    CHECK_INT((int)s.count, 4);
    CHECK_STR(s.names[0], "A");
    CHECK_STR(s.values[1], "2");
    CHECK_STR(s.values[2], "true");
    CHECK_STR(s.names[3], "ConnectionStrings:Db");
    CHECK_INT(local_json(&s, "{\"IsEncrypted\": true, \"Values\": {}}", &err), AZF_E_UNSUPPORTED);
    CHECK(strstr(err.text, "local.settings.json: IsEncrypted is true") == err.text);
    CHECK_INT(local_json(&s, "{\"Values\": {\"X\": {}}}", &err), AZF_E_PARSE);
    CHECK_STR(err.text, "local.settings.json: Values.X must be a string");
    CHECK_INT(local_json(&s, "{\"Values\": {\"A=B\": \"x\"}}", &err), AZF_E_PARSE);
    CHECK_INT(local_json(&s, "{\"Values\": [1]}", &err), AZF_E_PARSE);
    CHECK_STR(err.text, "local.settings.json: Values must be an object");
    CHECK_INT(local_json(&s, "{\"Values\": {\"A\": \"1\",}}", &err), AZF_E_PARSE);
    CHECK_STR(err.text, "local.settings.json:1:22: invalid JSON");

    azf__settings_clear(&s);
    CHECK_INT(azf__settings_load(&s, "/nonexistent-dir", &err), 0); /* absent files are fine */
    azf__settings_clear(&s);
    TEST_MAIN_END();
}
