/* `azfunc start`, HTTP streaming (docs/http-streaming.md): when the app serves HTTP itself
 * (it imports an HTTP extension, so the Python adapter runs the extension's server and
 * reports its HttpUri), the runner does what the Functions host does (host-protocol.md
 * §9): it starts the invocation with only the route parameters, forwards the client's
 * request to that server with an x-ms-invocation-id header, and passes the response back
 * as it arrives (chunked), reading from the server only as fast as the client takes it.
 *
 * The HTTP front (runner_http.c) owns the client connection and dispatches the request
 * as soon as its head is in; the body comes through azf__http_body_stream (collected
 * here, then sent: evhttp's client sends a request body whole). When the client goes
 * away the request stays ours (azf__http_client_gone), checked at each piece and every
 * second; ending the reply then frees it. */
#include "host/runner_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#define CLIENT_BACKLOG (1u << 20) /* pause the server beyond this much unsent to the client */
#define UPSTREAM_TIMEOUT_S 240    /* the host's forwarding activity timeout */

typedef struct proxy {
    runner *r;
    azf__http_req *client; /* until the reply ends */
    struct evhttp_connection *up;
    struct evhttp_request *ureq; /* NULL once evhttp has finished with it */
    struct event *watch;         /* notices a gone client while the server is quiet */
    llhttp_method_t method;
    int started, paused, done;
} proxy;

int azf__stream_set_uri(runner *r, const char *uri)
{
    struct evhttp_uri *u = evhttp_uri_parse(uri);
    const char *host = u ? evhttp_uri_get_host(u) : NULL;
    int port = u ? evhttp_uri_get_port(u) : -1;
    if (host && port > 0 && (r->stream_host = azf__strdup(host)))
        r->stream_port = port;
    if (u)
        evhttp_uri_free(u);
    return r->stream_port > 0 ? 0 : -1;
}

static int client_gone(const proxy *p)
{
    return !p->client || azf__http_client_gone(p->client);
}

static void free_later(evutil_socket_t fd, short what, void *arg)
{
    proxy *p = arg;
    (void)fd, (void)what;
    if (p->up)
        evhttp_connection_free(p->up);
    p->r->replying--;
    azf__maybe_exit(p->r);
    azf__free(p);
}

/* Ends the exchange once: the client's reply, then the upstream connection (freed outside
 * evhttp's callbacks). ok: the server answered (else 502 when nothing was sent yet). */
static void finish(proxy *p, int ok)
{
    if (p->done)
        return;
    p->done = 1;
    if (p->watch)
        event_free(p->watch);
    p->watch = NULL;
    if (p->ureq) {
        struct evhttp_request *u = p->ureq;
        p->ureq = NULL;
        evhttp_request_set_error_cb(u, NULL);
        evhttp_cancel_request(u);
    }
    if (p->client) {
        if (p->started)
            azf__http_send_end(p->r, p->client);
        else
            azf__http_reply_text(p->r, p->client, ok ? 500 : 502,
                                 ok ? "Internal Server Error" : "Bad Gateway", NULL);
        p->client = NULL;
    }
    event_base_once(p->r->base, -1, EV_TIMEOUT, free_later, p, NULL);
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    proxy *p = arg;
    (void)fd, (void)what;
    if (client_gone(p))
        finish(p, 0); /* dropping the upstream request tells the app's server */
}

static void resume_upstream(void *arg)
{
    proxy *p = arg;
    if (p->paused && !p->done) {
        p->paused = 0;
        bufferevent_enable(evhttp_connection_get_bufferevent(p->up), EV_READ);
    }
}

static int on_headers(struct evhttp_request *ureq, void *arg)
{
    proxy *p = arg;
    if (p->done || client_gone(p))
        return -1;
    struct evkeyvalq *out = &p->client->out_headers;
    const struct evkeyvalq *in = evhttp_request_get_input_headers(ureq);
    for (struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next) {
        static const char *const hop[] = {"connection", "content-length", "transfer-encoding",
                                          "keep-alive", "date",           "server"};
        int skip = 0;
        for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
            skip |= strcasecmp(h->key, hop[i]) == 0;
        if (!skip)
            evhttp_add_header(out, h->key, h->value);
    }
    azf__http_send_start(p->r, p->client, evhttp_request_get_response_code(ureq),
                         evhttp_request_get_response_code_line(ureq));
    p->started = 1;
    return 0;
}

static void on_chunk(struct evhttp_request *ureq, void *arg)
{
    proxy *p = arg;
    struct evbuffer *in = evhttp_request_get_input_buffer(ureq);
    if (p->done || !p->started || client_gone(p)) {
        evbuffer_drain(in, evbuffer_get_length(in));
        if (!p->done && client_gone(p))
            finish(p, 0); /* evhttp allows cancelling from the chunk callback */
        return;
    }
    azf__http_send_piece(p->r, p->client, in);
    if (azf__http_unsent(p->client) > CLIENT_BACKLOG && !p->paused) {
        p->paused = 1;
        bufferevent_disable(evhttp_connection_get_bufferevent(p->up), EV_READ);
    }
}

static void on_done(struct evhttp_request *ureq, void *arg)
{
    proxy *p = arg;
    p->ureq = NULL; /* evhttp frees it after this callback */
    finish(p, ureq != NULL && evhttp_request_get_response_code(ureq) != 0 && !client_gone(p));
}

static void on_error(enum evhttp_request_error err, void *arg)
{
    proxy *p = arg;
    (void)err;
    p->ureq = NULL;
    finish(p, 0);
}

/* The client's body, collected for the upstream request. */
static void on_body_piece(void *arg, struct evbuffer *piece)
{
    proxy *p = arg;
    if (p->ureq)
        evbuffer_add_buffer(evhttp_request_get_output_buffer(p->ureq), piece);
    else
        evbuffer_drain(piece, evbuffer_get_length(piece));
}

static enum evhttp_cmd_type command(llhttp_method_t m)
{
    switch (m) {
    case HTTP_POST:
        return EVHTTP_REQ_POST;
    case HTTP_HEAD:
        return EVHTTP_REQ_HEAD;
    case HTTP_PUT:
        return EVHTTP_REQ_PUT;
    case HTTP_DELETE:
        return EVHTTP_REQ_DELETE;
    case HTTP_OPTIONS:
        return EVHTTP_REQ_OPTIONS;
    case HTTP_PATCH:
        return EVHTTP_REQ_PATCH;
    default:
        return EVHTTP_REQ_GET;
    }
}

/* The body is in (complete) or will never be: the request goes upstream, or the
 * exchange ends. */
static void on_body_end(void *arg, int complete)
{
    proxy *p = arg;
    if (p->done || !p->ureq)
        return;
    if (!complete) {
        finish(p, 0);
        return;
    }
    struct evhttp_request *u = p->ureq;
    if (evhttp_make_request(p->up, u, command(p->method), p->client->target)) {
        p->ureq = NULL; /* evhttp has freed it */
        finish(p, 0);
    }
}

void azf__stream_request(runner *r, azf__http_req *req, const azf_function *fn,
                         azf_value_map *route)
{
    /* The invocation first: RpcHttp with only the route parameters (RequiresRouteParameters). */
    azf_value *v = NULL;
    int rc = azf_value_new_http(&v);
    for (size_t i = 0; rc == 0 && route && i < azf_value_map_count(route); i++) {
        const char *k;
        const azf_value *rv = azf_value_map_at(route, i, &k);
        rc = azf_value_http_set(v, AZF_HTTP_PARAMS, k, azf_value_data(rv, NULL));
    }
    call *c = NULL;
    if (rc == 0)
        c = azf__start_call(r, fn, v,
                            "This function was programmatically called via the host APIs.", req);
    else
        azf_value_free(v);
    if (c)
        c->req = NULL; /* answered by the proxy below, not by the invocation */
    proxy *p = c ? azf__calloc(1, sizeof *p) : NULL;
    if (!p) {
        azf__http_reply_text(r, req, 500, "Internal Server Error", NULL);
        return;
    }
    p->r = r;
    p->client = req;
    r->replying++;
    p->up = evhttp_connection_base_new(r->base, NULL, r->stream_host, (ev_uint16_t)r->stream_port);
    if (p->up)
        evhttp_connection_set_timeout_tv(p->up, &(struct timeval){UPSTREAM_TIMEOUT_S, 0});
    p->watch = event_new(r->base, -1, EV_PERSIST, on_watch, p);
    p->ureq = p->up && p->watch ? evhttp_request_new(on_done, p) : NULL;
    if (!p->ureq) {
        finish(p, 0);
        return;
    }
    event_add(p->watch, &(struct timeval){1, 0});
    evhttp_request_set_header_cb(p->ureq, on_headers);
    evhttp_request_set_chunked_cb(p->ureq, on_chunk);
    evhttp_request_set_error_cb(p->ureq, on_error);
    struct evkeyvalq *uh = evhttp_request_get_output_headers(p->ureq);
    for (struct evkeyval *h = req->in_headers.tqh_first; h; h = h->next.tqe_next)
        if (strcasecmp(h->key, "connection") != 0 && strcasecmp(h->key, "keep-alive") != 0 &&
            strcasecmp(h->key, "transfer-encoding") != 0 && strcasecmp(h->key, "expect") != 0)
            evhttp_add_header(uh, h->key, h->value);
    evhttp_add_header(uh, "x-ms-invocation-id", azf_invocation_id(c->inv));
    azf__http_on_drained(req, resume_upstream, p);
    p->method = req->method;
    azf__http_body_stream(req, on_body_piece, on_body_end, p);
}
