/* `azfunc start`, the HTTP front: libevent's evhttp parses the requests and writes the
 * replies; this file configures it and holds the small reply helpers. */
#include "host/runner_internal.h"

#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>

int azf__http_start(runner *r)
{
    const azf__runner_opts *o = r->o;
    if (!(r->http = evhttp_new(r->base))) {
        fprintf(stderr, "azfunc start: cannot create the event loop\n");
        return -1;
    }
    evhttp_set_gencb(r->http, azf__route_request, r);
    evhttp_set_max_body_size(r->http, (ev_ssize_t)o->max_body);
    evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    if (!(r->bound = evhttp_bind_socket_with_handle(r->http, o->host, (ev_uint16_t)o->port))) {
        fprintf(stderr, "azfunc start: cannot listen on %s:%d\n", o->host, o->port);
        return -1;
    }
    return 0;
}

const char *azf__http_method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "GET";
}

void azf__http_reply_text(struct evhttp_request *req, int code, const char *reason,
                          const char *text)
{
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    if (text) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; charset=utf-8");
        evbuffer_add(b, text, strlen(text));
    }
    evhttp_send_reply(req, code, reason, NULL);
}
