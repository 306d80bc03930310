/* `azfunc start`, CORS as Core Tools applies it (ASP.NET Core's CORS middleware with the
 * --cors / Host.CORS origins, any header, any method): a request from an allowed origin
 * gets Access-Control-Allow-Origin; a preflight (OPTIONS with Origin and
 * Access-Control-Request-Method) is answered here with 204, never by a function. */
#include "host/runner_internal.h"

#include <string.h>
#include <strings.h>

/* origins: comma-separated, "*" for any. */
static int allowed(const char *origins, const char *origin, int *any)
{
    *any = 0;
    for (const char *p = origins; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n == 1 && *p == '*')
            return *any = 1;
        if (n && strlen(origin) == n && strncasecmp(p, origin, n) == 0)
            return 1;
        p += n + (end != NULL);
    }
    return 0;
}

/* The CORS response headers for origin, when it is allowed. */
static int allow(runner *r, azf__http_req *req, const char *origin)
{
    struct evkeyvalq *out = &req->out_headers;
    int any;
    if (!allowed(r->cors, origin, &any))
        return 0;
    /* Any origin is "*", except with credentials, where the CORS protocol wants the
     * origin itself. */
    evhttp_add_header(out, "Access-Control-Allow-Origin",
                      any && !r->cors_credentials ? "*" : origin);
    if (!any || r->cors_credentials)
        evhttp_add_header(out, "Vary", "Origin");
    if (r->cors_credentials)
        evhttp_add_header(out, "Access-Control-Allow-Credentials", "true");
    return 1;
}

int azf__cors(runner *r, azf__http_req *req)
{
    if (!r->cors || !*r->cors)
        return 0;
    const struct evkeyvalq *in = &req->in_headers;
    const char *origin = evhttp_find_header(in, "Origin");
    if (!origin)
        return 0;
    const char *method = evhttp_find_header(in, "Access-Control-Request-Method");
    if (req->method != HTTP_OPTIONS || !method) {
        allow(r, req, origin);
        return 0;
    }
    if (allow(r, req, origin)) {
        struct evkeyvalq *out = &req->out_headers;
        const char *headers = evhttp_find_header(in, "Access-Control-Request-Headers");
        evhttp_add_header(out, "Access-Control-Allow-Methods", method);
        if (headers)
            evhttp_add_header(out, "Access-Control-Allow-Headers", headers);
    }
    azf__http_reply_text(r, req, 204, "No Content", NULL);
    return 1;
}
