/* `azfunc start`, HTTP streaming (docs/http-streaming.md): when the app serves HTTP itself
 * (it imports an HTTP extension, so the Python adapter runs the extension's server and
 * reports its HttpUri), the runner does what the Functions host does (host-protocol.md
 * §9): it starts the invocation with only the route parameters and forwards the client's
 * request to that server with an x-ms-invocation-id header, both ways as it arrives.
 *
 * One exchange is a `proxy`: a bufferevent to the app's server that we write the request
 * to (the body as the HTTP front hands it over: azf__http_body_stream) and read the
 * response from, parsed by llhttp and passed to the client piece by piece. Each side is
 * read only as fast as the other takes it. The front owns the client connection; a gone
 * client shows through azf__http_client_gone, checked at each piece, when the client
 * has drained, and every second. Once the reply has ended, the front calls none of the
 * proxy's callbacks any more: it is freed then, on the next loop turn. */
#include "host/runner_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <llhttp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define CLIENT_BACKLOG (1u << 20)   /* stop reading the server beyond this much unsent */
#define UPSTREAM_BACKLOG (1u << 20) /* stop reading the client beyond this much unsent */
#define UPSTREAM_TIMEOUT_S 240.0    /* the host's forwarding activity timeout */
#define CONNECT_ATTEMPTS 10         /* the host's, with its delays: 50 ms doubling to 250 */
#define MAX_HEAD (64u << 10)        /* the server's status line and headers */

enum { BODY_NONE, BODY_LENGTH, BODY_CHUNKED }; /* how the request body goes upstream */

typedef struct proxy {
    runner *r;
    azf__http_req *client;  /* until the reply ends */
    struct bufferevent *up; /* the connection to the app's server, while open */
    struct evbuffer *held;  /* the request written so far, between connect attempts */
    struct event *retry, *idle, *watch;
    struct timeval idle_for; /* the activity timeout */
    struct sockaddr_storage addr;
    char where[300]; /* host:port */
    int addrlen, attempts, connected;
    int body;                /* BODY_* */
    unsigned long long left; /* BODY_LENGTH: bytes still to come */
    llhttp_t parser;
    struct evkeyvalq head;                  /* the server's headers, until complete */
    struct evbuffer *name, *value, *reason; /* the header and status line being parsed */
    struct evbuffer *piece;                 /* response body parsed, for the client */
    size_t head_bytes;
    int started;   /* the client's reply has begun */
    int completed; /* the server's response is complete */
    int up_paused, client_paused, done;
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

/* ---- ending ---------------------------------------------------------------------- */

static void free_later(evutil_socket_t fd, short what, void *arg)
{
    proxy *p = arg;
    (void)fd, (void)what;
    evhttp_clear_headers(&p->head);
    struct evbuffer *bufs[] = {p->held, p->name, p->value, p->reason, p->piece};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i])
            evbuffer_free(bufs[i]);
    p->r->replying--;
    azf__maybe_exit(p->r);
    azf__free(p);
}

/* Ends the exchange once. code 0: the server's response is complete, the reply ends;
 * otherwise the reply is cut short, or answered with code when nothing was sent yet.
 * Closing the upstream connection tells the app's server. */
static void finish(proxy *p, int code)
{
    if (p->done)
        return;
    p->done = 1;
    struct event *evs[] = {p->retry, p->idle, p->watch};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i])
            event_free(evs[i]);
    if (p->up)
        bufferevent_free(p->up);
    p->up = NULL;
    azf__http_req *c = p->client;
    p->client = NULL;
    if (p->client_paused) /* the front reads the rest of the body (and ends it) itself */
        azf__http_body_pause(c, 0);
    if (code == 0)
        azf__http_send_end(p->r, c);
    else if (p->started)
        azf__http_send_abort(p->r, c);
    else
        azf__http_reply_text(p->r, c, code,
                             code == 400   ? "Bad Request"
                             : code == 500 ? "Internal Server Error"
                                           : "Bad Gateway",
                             NULL);
    event_base_once(p->r->base, -1, EV_TIMEOUT, free_later, p, NULL); /* out of callbacks */
}

static void on_watch(evutil_socket_t fd, short what, void *arg)
{
    proxy *p = arg;
    (void)fd, (void)what;
    if (azf__http_client_gone(p->client))
        finish(p, 502);
}

static void on_idle(evutil_socket_t fd, short what, void *arg)
{
    proxy *p = arg;
    (void)fd, (void)what;
    say(C_YELLOW, "HTTP streaming: no progress with the app's server for %g s: exchange dropped",
        (double)p->idle_for.tv_sec + p->idle_for.tv_usec / 1e6);
    finish(p, 502);
}

/* Activity in either direction restarts the upstream timeout, which runs while connected
 * (connecting is bounded by its attempts) and not waiting for the client. */
static void active(proxy *p)
{
    if (!p->done && p->connected && !p->up_paused)
        event_add(p->idle, &p->idle_for);
}

/* AZF_HTTP_PROXY_TIMEOUT_SECONDS, as the worker reads it (docs/http-streaming.md). */
static struct timeval idle_timeout(void)
{
    const char *raw = getenv("AZF_HTTP_PROXY_TIMEOUT_SECONDS");
    char *end = NULL;
    double s = raw && *raw ? strtod(raw, &end) : 0;
    if (!end || *end || !(s > 0 && s < 1e9))
        s = UPSTREAM_TIMEOUT_S;
    return (struct timeval){(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
}

static void on_client_drained(void *arg)
{
    proxy *p = arg;
    if (p->done)
        return;
    if (azf__http_client_gone(p->client)) {
        finish(p, 502);
    } else if (p->up_paused) {
        p->up_paused = 0;
        bufferevent_enable(p->up, EV_READ);
        active(p);
    }
}

/* ---- the response: llhttp's callbacks ----------------------------------------------- */

static int add_head(llhttp_t *h, struct evbuffer *to, const char *at, size_t n)
{
    proxy *p = h->data;
    p->head_bytes += n;
    if (p->head_bytes > MAX_HEAD) {
        llhttp_set_error_reason(h, "response head too large");
        return HPE_USER;
    }
    return evbuffer_add(to, at, n) == 0 ? HPE_OK : HPE_USER;
}

static int on_status(llhttp_t *h, const char *at, size_t n)
{
    return add_head(h, ((proxy *)h->data)->reason, at, n);
}

static int on_header_field(llhttp_t *h, const char *at, size_t n)
{
    return add_head(h, ((proxy *)h->data)->name, at, n);
}

static int on_header_value(llhttp_t *h, const char *at, size_t n)
{
    return add_head(h, ((proxy *)h->data)->value, at, n);
}

/* A NUL-terminated copy of what b holds, emptying it. */
static char *take_string(struct evbuffer *b)
{
    size_t n = evbuffer_get_length(b);
    char *s = azf__malloc(n + 1);
    if (s) {
        evbuffer_remove(b, s, n);
        s[n] = '\0';
    }
    evbuffer_drain(b, evbuffer_get_length(b));
    return s;
}

static int on_header_value_complete(llhttp_t *h)
{
    proxy *p = h->data;
    char *k = take_string(p->name), *v = take_string(p->value);
    int rc = k && v ? evhttp_add_header(&p->head, k, v) : -1;
    azf__free(k);
    azf__free(v);
    return rc == 0 ? HPE_OK : HPE_USER;
}

/* Hop-by-hop headers (RFC 9110 7.6.1), the ones the Connection header names, and what
 * each side sets for itself: the framing, and an Expect the front has dealt with. */
static int hop_by_hop(const char *name, const char *connection)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection",
                                      "te",         "trailer",    "transfer-encoding",
                                      "upgrade",    "expect",     "content-length"};
    for (size_t i = 0; i < sizeof hop / sizeof hop[0]; i++)
        if (strcasecmp(name, hop[i]) == 0)
            return 1;
    size_t n = strlen(name);
    for (const char *c = connection; c && *c;) { /* a comma-separated list of names */
        c += strspn(c, " \t,");
        size_t len = strcspn(c, " \t,");
        if (len == n && strncasecmp(c, name, n) == 0)
            return 1;
        c += len;
    }
    return 0;
}

static int on_headers_complete(llhttp_t *h)
{
    proxy *p = h->data;
    int code = h->status_code;
    if (code < 200) { /* an interim response (100, 103): not passed on */
        evhttp_clear_headers(&p->head);
        evbuffer_drain(p->reason, evbuffer_get_length(p->reason));
        if (code != 101)
            return HPE_OK;
        llhttp_set_error_reason(h, "unexpected protocol switch");
        return HPE_USER;
    }
    struct evkeyvalq *out = &p->client->out_headers;
    const char *connection = evhttp_find_header(&p->head, "Connection");
    for (struct evkeyval *e = p->head.tqh_first; e; e = e->next.tqe_next)
        if (!hop_by_hop(e->key, connection) && strcasecmp(e->key, "server") != 0 &&
            strcasecmp(e->key, "date") != 0) /* the front's own */
            evhttp_add_header(out, e->key, e->value);
    evhttp_clear_headers(&p->head);
    char *reason = take_string(p->reason);
    azf__http_send_start(p->r, p->client, code, reason && *reason ? reason : NULL);
    azf__free(reason);
    p->started = 1;
    azf__http_on_drained(p->client, on_client_drained, p);
    /* A reply to HEAD has no content, whatever its Content-Length says: 1 tells llhttp. */
    return p->client->method == HTTP_HEAD ? 1 : HPE_OK;
}

static int on_body(llhttp_t *h, const char *at, size_t n)
{
    return evbuffer_add(((proxy *)h->data)->piece, at, n) == 0 ? HPE_OK : HPE_USER;
}

static int on_message_complete(llhttp_t *h)
{
    proxy *p = h->data;
    if (h->status_code < 200)
        return HPE_OK; /* the real response follows */
    p->completed = 1;
    return HPE_PAUSED; /* nothing after it is ours to read */
}

static const llhttp_settings_t parse = {
    .on_status = on_status,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_header_value_complete = on_header_value_complete,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

/* ---- the response: reading it, passing it on --------------------------------------- */

/* The body parsed so far goes to the client; beyond CLIENT_BACKLOG unsent, the server
 * waits until the client has taken it. */
static void relay(proxy *p)
{
    if (!p->started || evbuffer_get_length(p->piece) == 0)
        return;
    if (azf__http_client_gone(p->client)) {
        finish(p, 502);
        return;
    }
    azf__http_send_piece(p->r, p->client, p->piece);
    if (azf__http_unsent(p->client) > CLIENT_BACKLOG && !p->up_paused) {
        p->up_paused = 1;
        bufferevent_disable(p->up, EV_READ);
        evtimer_del(p->idle); /* waiting for the client, not for the server */
    }
}

static void fail_response(proxy *p)
{
    say(C_YELLOW, "HTTP streaming: bad response from the app's server: %s",
        llhttp_get_error_reason(&p->parser) ? llhttp_get_error_reason(&p->parser)
                                            : llhttp_errno_name(llhttp_get_errno(&p->parser)));
    finish(p, 502);
}

static void on_up_read(struct bufferevent *bev, void *arg)
{
    proxy *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    llhttp_errno_t err = HPE_OK;
    if (azf__http_client_gone(p->client)) {
        finish(p, 502);
        return;
    }
    active(p);
    size_t n;
    while (err == HPE_OK && (n = evbuffer_get_contiguous_space(in)) > 0) {
        err = llhttp_execute(&p->parser, (const char *)evbuffer_pullup(in, (ev_ssize_t)n), n);
        evbuffer_drain(in, n);
    }
    relay(p);
    if (p->done)
        return;
    if (p->completed)
        finish(p, 0);
    else if (err != HPE_OK)
        fail_response(p);
}

/* ---- the request ----------------------------------------------------------------- */

/* Where the request goes: the connection's output, or held between attempts. */
static struct evbuffer *upstream(proxy *p)
{
    return p->up ? bufferevent_get_output(p->up) : p->held;
}

/* The server took some of the request. */
static void on_up_drain(struct evbuffer *out, const struct evbuffer_cb_info *info, void *arg)
{
    (void)out;
    if (info->n_deleted)
        active(arg);
}

/* It is low again (the write watermark). */
static void on_up_written(struct bufferevent *bev, void *arg)
{
    proxy *p = arg;
    (void)bev;
    if (p->client_paused && !p->done) { /* the server caught up: read the client again */
        p->client_paused = 0;
        azf__http_body_pause(p->client, 0);
    }
}

static void on_piece(void *ud, struct evbuffer *piece)
{
    proxy *p = ud;
    size_t n = evbuffer_get_length(piece);
    if (p->done || p->body == BODY_NONE) {
        evbuffer_drain(piece, n);
        return;
    }
    struct evbuffer *out = upstream(p);
    if (p->body == BODY_LENGTH) { /* the front checks the framing: never more than announced */
        size_t take = n < p->left ? n : (size_t)p->left;
        evbuffer_remove_buffer(piece, out, take);
        evbuffer_drain(piece, evbuffer_get_length(piece));
        p->left -= take;
    } else if (n) {
        evbuffer_add_printf(out, "%zx\r\n", n);
        evbuffer_add_buffer(out, piece);
        evbuffer_add(out, "\r\n", 2);
    }
    active(p);
    if (evbuffer_get_length(out) > UPSTREAM_BACKLOG && !p->client_paused) {
        p->client_paused = 1;
        azf__http_body_pause(p->client, 1);
    }
}

static void on_body_end(void *ud, int complete)
{
    proxy *p = ud;
    if (p->done) {
        return;
    } else if (!complete) { /* the app's server sees the body cut short */
        finish(p, azf__http_client_gone(p->client) ? 502 : 400);
    } else if (p->body == BODY_CHUNKED) {
        evbuffer_add(upstream(p), "0\r\n\r\n", 5);
    }
}

/* The request line and the client's headers, minus the hop-by-hop ones, with the
 * invocation id; the body framing the client chose (Content-Length passes through). */
static void write_head(proxy *p, azf__http_req *req, const char *invocation_id)
{
    struct evbuffer *out = p->held;
    const struct evkeyvalq *in = &req->in_headers;
    const char *connection = evhttp_find_header(in, "Connection");
    const char *length = evhttp_find_header(in, "Content-Length");
    evbuffer_add_printf(out, "%s %s HTTP/1.1\r\n", azf__http_method_name(req), req->target);
    for (const struct evkeyval *h = in->tqh_first; h; h = h->next.tqe_next)
        if (!hop_by_hop(h->key, connection) && strcasecmp(h->key, "x-ms-invocation-id") != 0)
            evbuffer_add_printf(out, "%s: %s\r\n", h->key, h->value);
    if (!evhttp_find_header(in, "Host"))
        evbuffer_add_printf(out, "Host: %s\r\n", p->where);
    evbuffer_add_printf(out, "x-ms-invocation-id: %s\r\nConnection: close\r\n", invocation_id);
    if (evhttp_find_header(in, "Transfer-Encoding")) { /* the front allows only chunked */
        p->body = BODY_CHUNKED;
        evbuffer_add_printf(out, "Transfer-Encoding: chunked\r\n");
    } else if (length) {
        p->body = BODY_LENGTH;
        p->left = strtoull(length, NULL, 10);
        evbuffer_add_printf(out, "Content-Length: %llu\r\n", p->left);
    }
    evbuffer_add(out, "\r\n", 2);
}

/* ---- connecting, with the host's retries -------------------------------------------- */

static void connect_up(proxy *p);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    connect_up(arg);
}

static void connect_failed(proxy *p, int err)
{
    if (p->up) { /* keep what was written for the next attempt */
        evbuffer_add_buffer(p->held, bufferevent_get_output(p->up));
        bufferevent_free(p->up);
        p->up = NULL;
    }
    if (++p->attempts >= CONNECT_ATTEMPTS) {
        say(C_YELLOW,
            "HTTP streaming: cannot connect to the app's server at %s after %d attempts (%s)",
            p->where, p->attempts, strerror(err));
        finish(p, 502);
        return;
    }
    int ms = 50 << (p->attempts - 1);
    ms = ms < 250 ? ms : 250;
    event_add(p->retry, &(struct timeval){0, ms * 1000});
}

static void on_up_event(struct bufferevent *bev, short what, void *arg)
{
    proxy *p = arg;
    if (what & BEV_EVENT_CONNECTED) {
        p->connected = 1;
        active(p);
        return;
    }
    if (!p->connected) {
        int err = 0, fd = (int)bufferevent_getfd(bev);
        socklen_t len = sizeof err;
        if (fd < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err == 0)
            err = EVUTIL_SOCKET_ERROR(); /* a refusal reported at once leaves SO_ERROR 0 */
        connect_failed(p, err);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !p->completed) { /* a response that ends with the connection */
        llhttp_finish(&p->parser);
        relay(p);
    }
    if (p->done)
        return;
    if (p->completed) {
        finish(p, 0);
    } else if (llhttp_get_errno(&p->parser) != HPE_OK) {
        fail_response(p);
    } else {
        say(C_YELLOW, "HTTP streaming: the app's server %s before %s",
            what & BEV_EVENT_EOF ? "closed the connection" : "failed",
            p->started ? "the response was complete" : "answering");
        finish(p, 502);
    }
}

static void connect_up(proxy *p)
{
    if (p->done)
        return;
    p->up = bufferevent_socket_new(p->r->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!p->up) {
        finish(p, 502);
        return;
    }
    bufferevent_setcb(p->up, on_up_read, on_up_written, on_up_event, p);
    bufferevent_setwatermark(p->up, EV_WRITE, UPSTREAM_BACKLOG / 2, 0);
    evbuffer_add_buffer(bufferevent_get_output(p->up), p->held);
    evbuffer_add_cb(bufferevent_get_output(p->up), on_up_drain, p);
    bufferevent_enable(p->up, p->up_paused ? EV_WRITE : EV_READ | EV_WRITE);
    /* A failure, even an immediate one, comes to on_up_event. */
    bufferevent_socket_connect(p->up, (struct sockaddr *)&p->addr, p->addrlen);
}

/* ---- a request ------------------------------------------------------------------- */

static proxy *proxy_new(runner *r, azf__http_req *req)
{
    proxy *p = azf__calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->r = r;
    p->client = req;
    p->head.tqh_first = NULL;
    p->head.tqh_last = &p->head.tqh_first;
    snprintf(p->where, sizeof p->where,
             strchr(r->stream_host, ':') && *r->stream_host != '[' ? "[%s]:%d" : "%s:%d",
             r->stream_host, r->stream_port);
    p->addrlen = (int)sizeof p->addr;
    p->held = evbuffer_new(), p->name = evbuffer_new(), p->value = evbuffer_new();
    p->reason = evbuffer_new(), p->piece = evbuffer_new();
    p->retry = evtimer_new(r->base, on_retry, p);
    p->idle = evtimer_new(r->base, on_idle, p);
    p->watch = event_new(r->base, -1, EV_PERSIST, on_watch, p);
    if (!p->held || !p->name || !p->value || !p->reason || !p->piece || !p->retry || !p->idle ||
        !p->watch ||
        evutil_parse_sockaddr_port(p->where, (struct sockaddr *)&p->addr, &p->addrlen)) {
        return p; /* not set up (parser.data NULL): finish() frees what was made */
    }
    llhttp_init(&p->parser, HTTP_RESPONSE, &parse);
    p->parser.data = p;
    return p;
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
    proxy *p = c ? proxy_new(r, req) : NULL;
    if (!p) {
        azf__http_reply_text(r, req, 500, "Internal Server Error", NULL);
        return;
    }
    r->replying++;
    if (!p->parser.data) {
        finish(p, 500);
        return;
    }
    write_head(p, req, azf_invocation_id(c->inv));
    event_add(p->watch, &(struct timeval){1, 0});
    p->idle_for = idle_timeout();
    connect_up(p);
    azf__http_body_stream(req, on_piece, on_body_end, p);
}
