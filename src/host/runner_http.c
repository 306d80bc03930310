/* `azfunc start`, the HTTP front: libevent's evhttp parses requests and writes replies;
 * this file configures it and adds what evhttp 2.1 leaves to its user: per-connection
 * state (one `conn` per client socket, found by its fd), the request and keep-alive
 * deadlines, the connection limit with accept pausing, the header and framing checks
 * made before routing, and the one function every reply goes through. */
#include "host/runner_internal.h"

#include <errno.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

/* One client connection. IDLE: waiting for a request (keep-alive deadline); READING: a
 * request has begun to arrive (request deadline); BUSY: dispatched, no deadline;
 * WRITING: a reply is being written. */
enum { IDLE, READING, BUSY, WRITING };

struct conn {
    runner *r;
    struct bufferevent *bev;
    struct evhttp_connection *evcon;
    struct event *deadline;
    call *active; /* the invocation answering this connection's request */
    int fd, phase;
    int requests;            /* read so far */
    int admit;               /* counted in r->admitted: may send one more request while stopping */
    conn *pending;           /* next one waiting for set_up_pending */
    void (*drained)(void *); /* azf__http_on_drained, until the reply ends */
    void *drained_ud;
};

/* ---- accepting ------------------------------------------------------------------- */

static void resume_accept(runner *r)
{
    if (r->paused && r->bound && r->nconns < r->max_connections) {
        evconnlistener_enable(evhttp_bound_socket_get_listener(r->bound));
        r->paused = 0;
    }
}

static void on_resume(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    resume_accept(arg);
}

/* accept() failed: at EMFILE/ENFILE (or any other error) stop accepting, say so once,
 * and retry when a connection closes or after a second, instead of spinning. */
static runner *the_runner; /* the listener's callbacks get evhttp's argument, not ours */

static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    runner *r = the_runner;
    (void)arg;
    int err = EVUTIL_SOCKET_ERROR();
    evconnlistener_disable(lev);
    if (!r->accept_failing) /* once per episode: until an accept succeeds again */
        say(C_YELLOW, "Cannot accept connections (%s, %d open): pausing", strerror(err), r->nconns);
    r->accept_failing = 1;
    r->paused = 2;
    struct timeval tv = {1, 0};
    evtimer_add(r->resume, &tv);
}

/* ---- connections ------------------------------------------------------------------ */

static void arm(conn *k, int phase)
{
    long long ms = phase == IDLE ? k->r->keep_alive_timeout_ms : k->r->read_timeout_ms;
    k->phase = phase;
    if (phase == BUSY || phase == WRITING) {
        evtimer_del(k->deadline);
        return;
    }
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(k->deadline, &tv);
}

/* Waiting for a request: keep-alive deadline, or the request deadline when bytes of the
 * next request (pipelined) are already here. */
static void await_request(conn *k)
{
    arm(k, evbuffer_get_length(bufferevent_get_input(k->bev)) ? READING : IDLE);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn *k = arg;
    (void)fd, (void)what;
    if (k->evcon && (k->phase == IDLE || k->phase == READING))
        evhttp_connection_free(k->evcon); /* calls on_conn_close */
}

/* Bytes arrived: the first ones of a request start its deadline. */
static void on_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    conn *k = arg;
    (void)buf;
    if (info->n_added && k->phase == IDLE)
        arm(k, READING);
}

static void unadmit(conn *k)
{
    if (k->admit) {
        k->admit = 0;
        k->r->admitted--;
    }
}

static void conn_free(conn *k)
{
    runner *r = k->r;
    if (k->deadline)
        event_free(k->deadline);
    azf__free(k);
    r->nconns--;
    resume_accept(r);
}

static void on_conn_close(struct evhttp_connection *evcon, void *arg)
{
    conn *k = arg;
    runner *r = k->r;
    (void)evcon;
    if (k->active)
        azf__call_orphaned(k->active); /* the invocation finishes unanswered */
    if (k->phase == WRITING) {
        /* A reply cut short (the client stopped reading until the timeout, or a write
         * failed): reset, so the kernel does not keep the unsent rest for it. */
        struct linger now = {1, 0};
        setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
        r->replying--;
    } else if (k->fd >= 0) {
        /* The supervisor holds a copy of the socket: end the connection now rather
         * than when both copies are closed. */
        shutdown(k->fd, SHUT_WR);
    }
    if (k->fd >= 0)
        azf__supervised_conn(k->fd, 0);
    unadmit(k);
    evbuffer_remove_cb(bufferevent_get_input(k->bev), on_input, k);
    if (k->fd >= 0 && k->fd < r->conns_cap && r->conns[k->fd] == k)
        r->conns[k->fd] = NULL;
    conn_free(k);
    azf__maybe_exit(r);
}

/* Runs once evhttp has made the connection around the bufferevent (see on_new_bev). */
static void set_up(conn *k)
{
    runner *r = k->r;
    bufferevent_event_cb ecb = NULL;
    void *evcon = NULL;
    bufferevent_getcb(k->bev, NULL, NULL, &ecb, &evcon);
    int fd = (int)bufferevent_getfd(k->bev);
    if (!ecb || !evcon || fd < 0) { /* evhttp has already let it go */
        evbuffer_remove_cb(bufferevent_get_input(k->bev), on_input, k);
        bufferevent_decref(k->bev);
        conn_free(k);
        return;
    }
    if (fd >= r->conns_cap) {
        int cap = r->conns_cap ? r->conns_cap : 256;
        while (cap <= fd)
            cap *= 2;
        conn **t = azf__realloc(r->conns, (size_t)cap * sizeof *t);
        if (!t) {
            bufferevent_decref(k->bev);
            evhttp_connection_free(evcon);
            conn_free(k);
            return;
        }
        memset(t + r->conns_cap, 0, (size_t)(cap - r->conns_cap) * sizeof *t);
        r->conns = t, r->conns_cap = cap;
    }
    k->evcon = evcon;
    k->fd = fd;
    r->conns[fd] = k;
    evhttp_connection_set_closecb(k->evcon, on_conn_close, k);
    azf__supervised_conn(fd, 1);
    bufferevent_decref(k->bev); /* evhttp owns it now; on_conn_close tells us its end */
    if (k->phase == IDLE)
        await_request(k);
}

static void set_up_pending(runner *r)
{
    conn *k = r->pending;
    r->pending = NULL;
    while (k) {
        conn *next = k->pending;
        set_up(k);
        k = next;
    }
}

static void on_set_up(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    set_up_pending(arg);
}

/* evhttp asks for each accepted connection's bufferevent: it is made here so the
 * connection gets its state, counted against the limit. evhttp only attaches the socket
 * after this returns, so the rest happens in set_up, on the next loop turn or before the
 * connection's first request, whichever comes first (our reference keeps the
 * bufferevent alive until then). */
static struct bufferevent *on_new_bev(struct event_base *base, void *arg)
{
    runner *r = arg;
    conn *k = azf__calloc(1, sizeof *k);
    struct bufferevent *bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!k || !bev) {
        azf__free(k);
        return bev;
    }
    k->r = r;
    k->bev = bev;
    k->fd = -1;
    k->deadline = evtimer_new(base, on_deadline, k);
    bufferevent_incref(bev);
    evbuffer_add_cb(bufferevent_get_input(bev), on_input, k);
    r->nconns++;
    if (r->accept_failing) {
        r->accept_failing = 0;
        say(C_YELLOW, "Accepting connections again");
    }
    if (r->nconns >= r->max_connections && !r->paused && r->bound) {
        evconnlistener_disable(evhttp_bound_socket_get_listener(r->bound));
        r->paused = 1;
    }
    k->pending = r->pending;
    r->pending = k;
    event_active(r->setup, EV_TIMEOUT, 0);
    return bev;
}

static conn *conn_of(runner *r, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = req ? evhttp_request_get_connection(req) : NULL;
    if (!evcon)
        return NULL;
    if (r->pending) /* a request can be read in the loop turn its connection was made */
        set_up_pending(r);
    int fd = (int)bufferevent_getfd(evhttp_connection_get_bufferevent(evcon));
    conn *k = fd >= 0 && fd < r->conns_cap ? r->conns[fd] : NULL;
    return k && k->evcon == evcon ? k : NULL;
}

void azf__http_attach(runner *r, struct evhttp_request *req, call *c)
{
    conn *k = conn_of(r, req);
    if (k)
        k->active = c;
}

int azf__http_fd(runner *r, struct evhttp_request *req)
{
    conn *k = conn_of(r, req);
    return k ? k->fd : -1;
}

/* ---- request bodies ---------------------------------------------------------------- */

static void release_body(void *data, void *user_data)
{
    (void)user_data;
    azf__free(data);
}

int azf__http_take_body(struct evhttp_request *req, azf_value **out)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    *out = NULL;
    if (n == 0)
        return 0;
    /* One copy, piece by piece: evhttp's chains are freed as they are copied, so the
     * body is held twice for no longer than a piece (evbuffer_pullup would copy it whole
     * into one more buffer first). */
    char *data = azf__malloc(n);
    if (!data)
        return AZF_E_NOMEM;
    for (size_t at = 0; at < n;) {
        size_t piece = n - at < (1u << 20) ? n - at : (1u << 20);
        int got = evbuffer_remove(in, data + at, piece);
        if (got <= 0) {
            azf__free(data);
            return AZF_E_IO;
        }
        at += (size_t)got;
    }
    int rc = azf_value_adopt_data(out, AZF_VALUE_BYTES, data, n, release_body, NULL);
    if (rc != 0)
        azf__free(data);
    return rc;
}

/* ---- replies ---------------------------------------------------------------------- */

static void on_sent(struct evhttp_request *req, void *arg)
{
    conn *k = arg;
    (void)req;
    if (k->phase == WRITING) {
        k->r->replying--;
        await_request(k);
    }
    azf__maybe_exit(k->r);
}

/* The connection is writing a reply from now on (once it is out: on_sent). */
static conn *begin_reply(runner *r, struct evhttp_request *req)
{
    conn *k = conn_of(r, req);
    struct evkeyvalq *out = evhttp_request_get_output_headers(req);
    if (r->stopping && !evhttp_find_header(out, "Connection")) /* the last one on it */
        evhttp_add_header(out, "Connection", "close");
    if (k) {
        k->active = NULL;
        k->drained = NULL;
        if (k->phase != WRITING)
            r->replying++;
        k->phase = WRITING;
        evhttp_request_set_on_complete_cb(req, on_sent, k);
    }
    return k;
}

void azf__http_send_start(runner *r, struct evhttp_request *req, int code, const char *reason)
{
    begin_reply(r, req);
    evhttp_send_reply_start(req, code, reason);
}

static void on_piece_written(struct evhttp_connection *evcon, void *arg)
{
    conn *k = arg;
    (void)evcon;
    if (k->drained)
        k->drained(k->drained_ud);
}

void azf__http_send_piece(runner *r, struct evhttp_request *req, struct evbuffer *piece)
{
    conn *k = conn_of(r, req);
    if (k)
        evhttp_send_reply_chunk_with_cb(req, piece, on_piece_written, k);
    evbuffer_drain(piece, evbuffer_get_length(piece)); /* what evhttp left: HEAD, no client */
}

void azf__http_send_end(runner *r, struct evhttp_request *req)
{
    conn *k = conn_of(r, req);
    if (k)
        k->drained = NULL;
    evhttp_send_reply_end(req); /* frees req when the client has gone */
}

void azf__http_send_abort(runner *r, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    if (!evcon) {
        evhttp_request_free(req); /* evhttp left it to us when the client went */
        return;
    }
    (void)r;
    evhttp_connection_free(evcon); /* on_conn_close resets it; frees req */
}

int azf__http_client_gone(struct evhttp_request *req)
{
    return !evhttp_request_get_connection(req); /* evhttp detaches it when the client goes */
}

size_t azf__http_unsent(struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    return evcon ? evbuffer_get_length(
                       bufferevent_get_output(evhttp_connection_get_bufferevent(evcon)))
                 : 0;
}

void azf__http_on_drained(struct evhttp_request *req, void (*cb)(void *), void *ud)
{
    conn *k = conn_of(the_runner, req);
    if (k)
        k->drained = cb, k->drained_ud = ud;
}

/* evhttp has read the whole body before the request is routed: it is one piece. */
void azf__http_body_stream(struct evhttp_request *req, azf__body_piece_fn on_piece,
                           azf__body_end_fn on_end, void *ud)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    if (evbuffer_get_length(in))
        on_piece(ud, in);
    on_end(ud, 1);
}

void azf__http_body_pause(struct evhttp_request *req, int paused)
{
    (void)req, (void)paused; /* nothing left to read */
}

void azf__http_send(runner *r, struct evhttp_request *req, int code, const char *reason)
{
    struct evbuffer *body = evhttp_request_get_output_buffer(req);
    size_t n = evbuffer_get_length(body);
    /* RFC 9110 6.4.1: no content in 1xx, 204 and 304 responses, nor in a reply to HEAD
     * (which says how long the GET body would be). evhttp 2.1 would send it anyway. */
    if (code < 200 || code == 204 || code == 304) {
        evbuffer_drain(body, n);
    } else if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
        char len[32];
        snprintf(len, sizeof len, "%zu", n);
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Length", len);
        evbuffer_drain(body, n);
    }
    conn *k = begin_reply(r, req);
    evhttp_send_reply(req, code, reason, NULL);
    /* evhttp watches for the client's EOF while writing and drops the connection on it;
     * a client that half-closed after its requests must still get every reply, so stop
     * reading until the reply is out (a closed socket still fails the write). */
    if (k)
        bufferevent_disable(k->bev, EV_READ);
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

void azf__http_reply_text(runner *r, struct evhttp_request *req, int code, const char *reason,
                          const char *text)
{
    if (text) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; charset=utf-8");
        evbuffer_add(evhttp_request_get_output_buffer(req), text, strlen(text));
    }
    azf__http_send(r, req, code, reason);
}

/* A framing or limit error: the rest of the stream cannot be trusted. */
static void refuse(runner *r, struct evhttp_request *req, int code, const char *reason,
                   const char *text)
{
    evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
    azf__http_reply_text(r, req, code, reason, text);
}

/* What evhttp 2.1 does not check (RFC 9112 6.1-6.3): a Transfer-Encoding other than
 * "chunked" (evhttp ignores it and reads no body), Transfer-Encoding with
 * Content-Length, and differing Content-Length values (evhttp reads the first); then
 * the header limits. Returns 1 when it has answered. */
static int refused(runner *r, struct evhttp_request *req)
{
    const struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
    const char *cl = NULL, *te = NULL;
    long long count = 0, bytes = 0;
    int tes = 0;
    for (const struct evkeyval *h = hs->tqh_first; h; h = h->next.tqe_next) {
        count++;
        bytes += (long long)(strlen(h->key) + strlen(h->value) + 4);
        if (strcasecmp(h->key, "Content-Length") == 0) {
            if (cl && strcmp(cl, h->value) != 0) {
                refuse(r, req, 400, "Bad Request", "conflicting Content-Length\n");
                return 1;
            }
            cl = h->value;
        } else if (strcasecmp(h->key, "Transfer-Encoding") == 0) {
            te = h->value, tes++;
        }
    }
    if (te && (tes > 1 || strcasecmp(te, "chunked") != 0)) {
        refuse(r, req, 501, "Not Implemented", "only the chunked transfer coding is supported\n");
        return 1;
    }
    if (te && cl) {
        refuse(r, req, 400, "Bad Request", "Content-Length with Transfer-Encoding\n");
        return 1;
    }
    const char *uri = evhttp_request_get_uri(req);
    if ((long long)strlen(uri) + 18 > r->max_request_line) { /* method, version, spaces */
        refuse(r, req, 414, "URI Too Long", NULL);
        return 1;
    }
    if (count > r->max_header_count || bytes > r->max_header_bytes) {
        refuse(r, req, 431, "Request Header Fields Too Large", NULL);
        return 1;
    }
    return 0;
}

/* evhttp's callback for every complete request. */
static void on_request(struct evhttp_request *req, void *arg)
{
    runner *r = arg;
    conn *k = conn_of(r, req);
    if (k) {
        arm(k, BUSY);
        k->requests++;
    }
    if (r->stopping && !(k && k->admit)) {
        azf__http_reply_text(r, req, 503, "Service Unavailable", NULL);
        return;
    }
    if (k)
        unadmit(k);
    if (!refused(r, req))
        azf__route_request(r, req);
}

int azf__http_start(runner *r)
{
    const azf__runner_opts *o = r->o;
    if (!(r->http = evhttp_new(r->base)) || !(r->resume = evtimer_new(r->base, on_resume, r)) ||
        !(r->setup = event_new(r->base, -1, 0, on_set_up, r))) {
        fprintf(stderr, "azfunc start: cannot create the event loop\n");
        return -1;
    }
    evhttp_set_gencb(r->http, on_request, r);
    evhttp_set_bevcb(r->http, on_new_bev, r);
    evhttp_set_max_body_size(r->http, (ev_ssize_t)r->max_body);
    /* evhttp applies this to the request line and to all header lines together (413
     * beyond); the finer limits are checked in refused(). */
    evhttp_set_max_headers_size(r->http, (ev_ssize_t)(r->max_header_bytes + r->max_request_line));
    /* Inactivity while reading or writing: the backstop behind our own deadlines. */
    long long idle = r->read_timeout_ms > r->keep_alive_timeout_ms ? r->read_timeout_ms
                                                                   : r->keep_alive_timeout_ms;
    struct timeval tv = {(time_t)(idle / 1000), (suseconds_t)(idle % 1000) * 1000};
    evhttp_set_timeout_tv(r->http, &tv);
    evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    if (r->listen_fd >= 0)
        r->bound = evhttp_accept_socket_with_handle(r->http, r->listen_fd);
    else
        r->bound = evhttp_bind_socket_with_handle(r->http, o->host, (ev_uint16_t)o->port);
    if (!r->bound) {
        fprintf(stderr, "azfunc start: cannot listen on %s:%d\n", o->host, o->port);
        return -1;
    }
    the_runner = r;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(r->bound), on_accept_error);
    return 0;
}

/* How long a connection accepted before a handover, with no request yet, may take to
 * send it: a client that connected just before has its request on the way. */
enum { HANDOVER_WAIT_MS = 5000 };

void azf__http_handover(runner *r)
{
    set_up_pending(r);
    /* Admitted first: closing a connection checks whether the process may end. */
    for (int fd = 0; fd < r->conns_cap; fd++) {
        conn *k = r->conns[fd];
        if (!k || k->phase == BUSY || k->phase == WRITING || /* closed after the reply */
            (k->phase == IDLE && k->requests > 0))
            continue;
        k->admit = 1;
        r->admitted++;
        if (k->phase == IDLE) {
            struct timeval tv = {HANDOVER_WAIT_MS / 1000, (HANDOVER_WAIT_MS % 1000) * 1000};
            evtimer_add(k->deadline, &tv);
        }
    }
    for (int fd = 0; fd < r->conns_cap; fd++) { /* kept alive: the client reconnects */
        conn *k = r->conns[fd];
        if (k && k->phase == IDLE && k->requests > 0)
            evhttp_connection_free(k->evcon); /* calls on_conn_close */
    }
}

/* Stops accepting (shutdown). */
void azf__http_stop_accepting(runner *r)
{
    if (r->bound)
        evhttp_del_accept_socket(r->http, r->bound);
    r->bound = NULL;
}
