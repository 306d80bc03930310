/* `azfunc start`, routing: a request goes to the admin API or, under the route prefix,
 * to the HTTP function whose route matches; everything else is answered here. */
#include "host/runner_internal.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <string.h>
#include <strings.h>
#include <time.h>

static int hex(char c)
{
    return c >= '0' && c <= '9'   ? c - '0'
           : c >= 'a' && c <= 'f' ? c - 'a' + 10
           : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                  : -1;
}

static int unreserved(int c)
{
    return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

/* The request path made safe to route (RFC 3986 6.2.2): every escape must be "%XX",
 * none may be %00, and the decoded path must be UTF-8 (else NULL: 400); escaped
 * unreserved characters are decoded (so "%2e%2e" is ".."), other escapes are kept for
 * the route matcher to decode once; then the dot-segments are removed (5.2.4). */
static char *normalize_path(const char *raw)
{
    size_t n = strlen(raw);
    char *dec = azf__malloc(n + 1), *out = azf__malloc(n + 2);
    size_t d = 0, o = 0;
    for (size_t i = 0; dec && out && i < n; i++) {
        int h, l;
        if (raw[i] != '%') {
            dec[d++] = out[o++] = raw[i];
            continue;
        }
        if (i + 2 >= n || (h = hex(raw[i + 1])) < 0 || (l = hex(raw[i + 2])) < 0 || h * 16 + l == 0)
            goto bad;
        dec[d++] = (char)(h * 16 + l);
        if (unreserved(h * 16 + l))
            out[o++] = (char)(h * 16 + l);
        else
            memcpy(out + o, raw + i, 3), o += 3;
        i += 2;
    }
    if (!dec || !out)
        goto bad;
    dec[d] = out[o] = '\0';
    if (!azf__utf8_valid(dec))
        goto bad;
    azf__free(dec);
    /* Remove dot-segments in place: out is rewritten from its start. */
    char *w = out, *seg = out[0] == '/' ? out + 1 : out;
    *w++ = '/';
    while (1) {
        char *end = strchr(seg, '/');
        size_t len = end ? (size_t)(end - seg) : strlen(seg);
        if (len == 1 && seg[0] == '.') {
            /* drop it */
        } else if (len == 2 && seg[0] == '.' && seg[1] == '.') {
            if (w > out + 1) { /* back over the last output segment and its slash */
                w--;
                while (w > out + 1 && w[-1] != '/')
                    w--;
            }
        } else {
            memmove(w, seg, len);
            w += len;
            if (end)
                *w++ = '/';
        }
        if (!end)
            break;
        seg = end + 1;
    }
    *w = '\0';
    return out;
bad:
    azf__free(dec);
    azf__free(out);
    return NULL;
}

int azf__is_http(const azf_function *fn)
{
    return azf_function_route(fn) != NULL;
}

/* An HTTP function of an app that serves HTTP itself (HTTP streaming). */
static int served_by_app(const runner *r, const azf_function *fn)
{
    return r->stream_port && azf__is_http(fn);
}

/* The function whose route matches path under the route prefix: 0, AZF_E_NOTFOUND (or
 * AZF_E_INVALID) or AZF_E_UNSUPPORTED (the method); *route: its values. */
static int match(runner *r, const azf__http_req *req, const char *path, const azf_function **fn,
                 azf_value_map **route)
{
    const char *prefix = r->settings.route_prefix ? r->settings.route_prefix : "api";
    size_t pl = strlen(prefix);
    const char *rest = path + 1;
    *fn = NULL;
    *route = NULL;
    if (pl) {
        if (strncmp(rest, prefix, pl) != 0 || (rest[pl] && rest[pl] != '/'))
            return AZF_E_NOTFOUND;
        rest += pl;
    }
    return azf_registry_match_route(azf_app_registry(r->app), azf__http_method_name(req), rest, fn,
                                    route);
}

static void on_admin(runner *r, azf__http_req *req, const char *name)
{
    const azf_function *fn = azf_app_find(r->app, name);
    if (req->method != HTTP_POST) {
        azf__http_reply_text(r, req, 405, "Method Not Allowed", NULL);
        return;
    }
    if (!fn) {
        azf__http_reply_text(r, req, 404, "Not Found", NULL);
        return;
    }
    if (azf__is_http(fn)) {
        azf__http_reply_text(r, req, 400, "Bad Request",
                             "HTTP-triggered functions are invoked on their route\n");
        return;
    }
    struct evbuffer *in = req->in_body;
    size_t n = evbuffer_get_length(in);
    cJSON *body = n ? cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), n) : NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (n && (!cJSON_IsObject(body) || (input && !cJSON_IsString(input)))) {
        cJSON_Delete(body);
        azf__http_reply_text(r, req, 400, "Bad Request", "expected {\"input\": \"<string>\"}\n");
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
            azf__http_reply_text(r, req, 400, "Bad Request", msg ? msg : err.text);
            azf__free(msg);
            return;
        }
    }
    cJSON_Delete(body);
    if (v)
        azf__start_call_metadata(r, fn, v, md,
                                 "This function was programmatically called via the host APIs.");
    azf__http_reply_text(r, req, v ? 202 : 500, v ? "Accepted" : "Internal Server Error", NULL);
}

static int is_admin(const char *path)
{
    return strncmp(path, "/admin/functions/", 17) == 0 && path[17] && !strchr(path + 17, '/');
}

static void dispatch(runner *r, azf__http_req *req, const char *path, const char *query)
{
    if (is_admin(path)) {
        on_admin(r, req, path + 17);
        return;
    }
    const azf_function *fn = NULL;
    azf_value_map *route = NULL;
    int rc = match(r, req, path, &fn, &route);
    if (rc == AZF_E_NOTFOUND || rc == AZF_E_INVALID) {
        azf__http_reply_text(r, req, 404, "Not Found", NULL);
        return;
    }
    if (rc == AZF_E_UNSUPPORTED) {
        azf__http_reply_text(r, req, 405, "Method Not Allowed", NULL);
        return;
    }
    if (rc == 0 && served_by_app(r, fn)) {
        azf__stream_request(r, req, fn, route);
        azf_value_map_free(route);
        return;
    }
    azf_value *v = NULL;
    rc = rc ? rc : azf__request_value(r, req, path, query, route, &v);
    azf_value_map_free(route);
    if (rc == AZF_E_PARSE) {
        azf__http_reply_text(r, req, 400, "Bad Request",
                             "invalid percent-encoding in the query string\n");
        return;
    }
    call *c = v ? azf__start_call(
                      r, fn, v, "This function was programmatically called via the host APIs.", req)
                : NULL;
    if (!c) {
        azf__http_reply_text(r, req, 500, "Internal Server Error", NULL);
        return;
    }
    azf__http_attach(r, req, c);
}

int azf__route_streams(runner *r, azf__http_req *req)
{
    if (!r->stream_port)
        return 0;
    const char *raw = req->uri ? evhttp_uri_get_path(req->uri) : NULL;
    char *path = normalize_path(raw && *raw ? raw : "/");
    const azf_function *fn = NULL;
    azf_value_map *route = NULL;
    int rc = path && !is_admin(path) ? match(r, req, path, &fn, &route) : AZF_E_NOTFOUND;
    azf_value_map_free(route);
    azf__free(path);
    return rc == 0 && served_by_app(r, fn);
}

void azf__route_request(runner *r, azf__http_req *req)
{
    const struct evhttp_uri *uri = req->uri;
    const char *raw = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (azf__cors(r, req))
        return;
    char *path = normalize_path(raw && *raw ? raw : "/");
    if (!path) {
        azf__http_reply_text(r, req, 400, "Bad Request", "invalid percent-encoding in the path\n");
        return;
    }
    dispatch(r, req, path, query);
    azf__free(path);
}
