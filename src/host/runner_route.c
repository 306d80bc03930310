/* `azfunc start`, routing: a request goes to the admin API or, under the route prefix,
 * to the HTTP function whose route matches; everything else is answered here. */
#include "host/runner_internal.h"

#include <cjson/cJSON.h>
#include <event2/buffer.h>
#include <string.h>
#include <strings.h>
#include <time.h>

int azf__is_http(const azf_function *fn)
{
    return azf_function_route(fn) != NULL;
}

static void on_admin(runner *r, struct evhttp_request *req, const char *name)
{
    const azf_function *fn = azf_app_find(r->app, name);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        azf__http_reply_text(req, 405, "Method Not Allowed", NULL);
        return;
    }
    if (!fn) {
        azf__http_reply_text(req, 404, "Not Found", NULL);
        return;
    }
    if (azf__is_http(fn)) {
        azf__http_reply_text(req, 400, "Bad Request",
                             "HTTP-triggered functions are invoked on their route\n");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    cJSON *body = n ? cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), n) : NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (n && (!cJSON_IsObject(body) || (input && !cJSON_IsString(input)))) {
        cJSON_Delete(body);
        azf__http_reply_text(req, 400, "Bad Request", "expected {\"input\": \"<string>\"}\n");
        return;
    }
    const char *text = cJSON_IsString(input) ? input->valuestring : "";
    azf_value *v = NULL;
    azf_value_map *md = NULL;
    const azf_binding *trig = azf_function_trigger(fn);
    if (trig && strcasecmp(azf_binding_type(trig), "timerTrigger") == 0 && !*text) {
        time_t now = time(NULL);
        v = azf__timer_value(now, now, 0);
    } else { /* the value and metadata the host would deliver (bindings.h) */
        azf__errmsg err = {{0}};
        if (azf__admin_input(fn, text, &v, &md, &err) == AZF_E_PARSE) {
            cJSON_Delete(body);
            char *msg = azf__asprintf("%s\n", err.text);
            azf__http_reply_text(req, 400, "Bad Request", msg ? msg : err.text);
            azf__free(msg);
            return;
        }
    }
    cJSON_Delete(body);
    if (v)
        azf__start_call_metadata(r, fn, v, md,
                                 "This function was programmatically called via the host APIs.");
    azf__http_reply_text(req, v ? 202 : 500, v ? "Accepted" : "Internal Server Error", NULL);
}

void azf__route_request(struct evhttp_request *req, void *arg)
{
    runner *r = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!path || !*path)
        path = "/";
    if (r->stopping) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        azf__http_reply_text(req, 503, "Service Unavailable", NULL);
        return;
    }
    if (strncmp(path, "/admin/functions/", 17) == 0 && path[17] && !strchr(path + 17, '/')) {
        on_admin(r, req, path + 17);
        return;
    }
    const char *prefix = r->settings.route_prefix ? r->settings.route_prefix : "api";
    size_t pl = strlen(prefix);
    const char *rest = path + 1;
    if (pl) {
        if (strncmp(rest, prefix, pl) != 0 || (rest[pl] && rest[pl] != '/')) {
            azf__http_reply_text(req, 404, "Not Found", NULL);
            return;
        }
        rest += pl;
    }
    const azf_function *fn = NULL;
    azf_value_map *route = NULL;
    int rc = azf_registry_match_route(azf_app_registry(r->app),
                                      azf__http_method_name(evhttp_request_get_command(req)), rest,
                                      &fn, &route);
    if (rc == AZF_E_NOTFOUND || rc == AZF_E_INVALID) {
        azf__http_reply_text(req, 404, "Not Found", NULL);
        return;
    }
    if (rc == AZF_E_UNSUPPORTED) {
        azf__http_reply_text(req, 405, "Method Not Allowed", NULL);
        return;
    }
    if (rc == 0 && r->stream_port && azf__is_http(fn)) {
        azf__stream_request(r, req, fn, route);
        azf_value_map_free(route);
        return;
    }
    azf_value *v = rc == 0 ? azf__request_value(r, req, path, query, route) : NULL;
    azf_value_map_free(route);
    call *c = v ? azf__start_call(
                      r, fn, v, "This function was programmatically called via the host APIs.", req)
                : NULL;
    if (!c) {
        azf__http_reply_text(req, 500, "Internal Server Error", NULL);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), azf__on_connection_close, c);
}
