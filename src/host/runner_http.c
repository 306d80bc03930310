/* `azfunc start`, the HTTP front: llhttp (Node.js's HTTP/1.1 parser) parses what libevent
 * bufferevents read from the connections an evconnlistener accepts; this file does the
 * rest: per-connection state (one `conn` per client socket, found by its fd), the
 * request and keep-alive deadlines, the request-line, header and body limits, the
 * connection limit with accept pausing, the framing rules llhttp leaves to its user,
 * one request at a time per connection (pipelined requests wait in the input buffer and
 * are answered in order), the one function every reply goes through, and the request
 * body streamed as it arrives to functions served by the app's own HTTP server. */
#include "host/runner_internal.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

/* One client connection. IDLE: waiting for a request (keep-alive deadline); READING: a
 * request has begun to arrive (request deadline); BUSY: dispatched, no deadline;
 * WRITING: a reply is being written; LINGER: the last reply is out and our side closed,
 * what the client still sends is read and dropped for a while (RFC 9112 9.6: closing at
 * once with its bytes unread would reset the connection, and the client could lose the
 * reply). */
enum { IDLE, READING, BUSY, WRITING, LINGER };

#define LINGER_MS 2000
#define LINGER_MAX (4u << 20) /* bytes dropped at most */
/* At most this much is read ahead of the parser (pipelined requests while one is
 * answered). */
#define READ_AHEAD (64u << 10)

struct conn {
    runner *r;
    struct bufferevent *bev;
    struct event *deadline;
    llhttp_t parser;
    azf__http_req *req; /* the request being read or answered, or NULL */
    call *active;       /* the invocation answering it */
    azf_buf url, field, value, head;
    long long header_bytes, header_count;
    unsigned long long body_bytes;
    int fd, phase;
    int requests;   /* read so far */
    int admit;      /* counted in r->admitted: may send one more request while stopping */
    int head_done;  /* the parser stopped at the end of req's head */
    int kick;       /* the parser has resumed there: run it even with no bytes */
    int msg_done;   /* req has been read whole */
    int dispatched; /* req has gone to routing */
    int refuse;     /* a limit a callback found exceeded: the status to answer */
    int keep_alive; /* the client wants the connection kept after this reply */
    int broken;     /* nothing more is read: closed once the reply is out */
    int eof;        /* the client has closed its side */
    int depth;      /* in pump(): closing waits for it to return */
    int closing;    /* 1: close once out of pump(); 2: abort */
};

static llhttp_settings_t settings;

static void pump(conn *k);
static void conn_close(conn *k, int abort);

static struct timeval tv_ms(long long ms)
{
    return (struct timeval){(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
}

/* How long a reply (or a streamed body) may make no progress: the longer of the two
 * connection timeouts, the backstop behind our own deadlines. */
static struct timeval stall_limit(const runner *r)
{
    return tv_ms(r->read_timeout_ms > r->keep_alive_timeout_ms ? r->read_timeout_ms
                                                               : r->keep_alive_timeout_ms);
}

/* ---- requests ---------------------------------------------------------------------- */

static azf__http_req *req_new(conn *k)
{
    azf__http_req *q = azf__calloc(1, sizeof *q);
    if (!q)
        return NULL;
    q->conn = k;
    q->in_headers.tqh_last = &q->in_headers.tqh_first;
    q->out_headers.tqh_last = &q->out_headers.tqh_first;
    q->in_body = evbuffer_new();
    q->out_body = evbuffer_new();
    if (!q->in_body || !q->out_body) {
        if (q->in_body)
            evbuffer_free(q->in_body);
        if (q->out_body)
            evbuffer_free(q->out_body);
        azf__free(q);
        return NULL;
    }
    return q;
}

static void req_free(azf__http_req *q)
{
    evhttp_clear_headers(&q->in_headers);
    evhttp_clear_headers(&q->out_headers);
    evbuffer_free(q->in_body);
    evbuffer_free(q->out_body);
    if (q->uri)
        evhttp_uri_free(q->uri);
    azf__free(q->target);
    azf__free(q);
}

/* After a callback into the request's holder: a request its client left and whose reply
 * has ended is freed once no callback is running on it. */
static void req_unref(azf__http_req *q)
{
    if (--q->refs == 0 && !q->conn && q->replied)
        req_free(q);
}

/* The reply to a request whose client has gone ends: the holder lets it go. */
static void req_release_gone(azf__http_req *q)
{
    q->replied = 1;
    q->on_piece = NULL, q->on_drained = NULL;
    q->refs++;
    req_unref(q);
}

/* A streamed body's end, told its reader once, unless the reply has ended: its holder
 * has let the request go then. */
static void end_body(azf__http_req *q, int complete)
{
    if (q->body_ended)
        return;
    q->body_ended = 1;
    if (q->on_end && !q->replied) {
        q->refs++;
        q->on_end(q->body_ud, complete);
        req_unref(q);
    }
}

const char *azf__http_method_name(const azf__http_req *req)
{
    return llhttp_method_name(req->method);
}

int azf__http_client_gone(const azf__http_req *req)
{
    return req->conn == NULL;
}

size_t azf__http_unsent(const azf__http_req *req)
{
    return req->conn ? evbuffer_get_length(bufferevent_get_output(req->conn->bev)) : 0;
}

void azf__http_on_drained(azf__http_req *req, void (*cb)(void *), void *ud)
{
    req->on_drained = cb;
    req->drained_ud = ud;
}

/* ---- accepting ------------------------------------------------------------------- */

static void resume_accept(runner *r)
{
    if (r->paused && r->listener && r->nconns < r->max_connections) {
        evconnlistener_enable(r->listener);
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
static void on_accept_error(struct evconnlistener *lev, void *arg)
{
    runner *r = arg;
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
    k->phase = phase;
    if (phase == BUSY || phase == WRITING) {
        evtimer_del(k->deadline);
        return;
    }
    struct timeval tv = tv_ms(phase == IDLE ? k->r->keep_alive_timeout_ms : k->r->read_timeout_ms);
    evtimer_add(k->deadline, &tv);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    conn *k = arg;
    (void)fd, (void)what;
    if (k->phase == IDLE || k->phase == READING || k->phase == LINGER)
        conn_close(k, 0);
}

static void unadmit(conn *k)
{
    if (k->admit) {
        k->admit = 0;
        k->r->admitted--;
    }
}

/* Ends the connection. abort: a reply cut short (the client stopped reading until the
 * timeout, or a write failed) is reset, so the kernel does not keep the unsent rest. A
 * request its holder still answers (a streamed one) outlives it: the holder hears of it
 * through its callbacks and ends the reply later. */
static void conn_close(conn *k, int abort)
{
    runner *r = k->r;
    if (k->depth) { /* pump() is on the stack: it closes on its way out */
        if (k->closing < 1 + abort)
            k->closing = 1 + abort;
        return;
    }
    azf__http_req *q = k->req;
    k->req = NULL;
    if (k->active)
        azf__call_orphaned(k->active); /* the invocation finishes unanswered */
    if (k->phase == WRITING) {
        struct linger now = {1, 0};
        if (abort)
            setsockopt(k->fd, SOL_SOCKET, SO_LINGER, &now, sizeof now);
        r->replying--;
    }
    if (!(k->phase == WRITING && abort))
        /* The supervisor holds a copy of the socket: end the connection now rather
         * than when both copies are closed. */
        shutdown(k->fd, SHUT_WR);
    azf__supervised_conn(k->fd, 0);
    unadmit(k);
    if (k->fd < r->conns_cap && r->conns[k->fd] == k)
        r->conns[k->fd] = NULL;
    bufferevent_free(k->bev);
    event_free(k->deadline);
    azf_buf_dispose(&k->url);
    azf_buf_dispose(&k->field);
    azf_buf_dispose(&k->value);
    azf_buf_dispose(&k->head);
    azf__free(k);
    r->nconns--;
    resume_accept(r);
    if (q) {
        q->conn = NULL;
        if (q->streaming) { /* its holder may still answer it: tell it */
            q->refs++;
            end_body(q, 0);
            if (q->on_drained && !q->replied)
                q->on_drained(q->drained_ud);
            req_unref(q); /* freed when its reply has ended */
        } else {
            req_free(q);
        }
    }
    azf__maybe_exit(r);
}

/* Waiting for the next request: keep-alive deadline, or the request deadline when bytes
 * of it (pipelined) are already here. */
static void await_request(conn *k)
{
    k->head_done = k->msg_done = k->dispatched = 0;
    k->header_bytes = k->header_count = 0;
    k->body_bytes = 0;
    arm(k, evbuffer_get_length(bufferevent_get_input(k->bev)) ? READING : IDLE);
}

static void on_linger_read(struct bufferevent *bev, void *arg)
{
    conn *k = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    k->body_bytes += evbuffer_get_length(in);
    evbuffer_drain(in, evbuffer_get_length(in));
    if (k->body_bytes > LINGER_MAX)
        conn_close(k, 0);
}

static void on_linger_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev, (void)what;
    conn_close(arg, 0); /* the client has closed too (or failed) */
}

/* The connection ends after its last reply: our side now, the client's when it has
 * read the reply and closed (or after LINGER_MS). */
static void linger(conn *k)
{
    if (k->eof) {
        conn_close(k, 0);
        return;
    }
    shutdown(k->fd, SHUT_WR);
    k->phase = LINGER;
    k->broken = 1; /* no more requests */
    k->body_bytes = 0;
    struct evbuffer *in = bufferevent_get_input(k->bev);
    evbuffer_drain(in, evbuffer_get_length(in));
    bufferevent_setcb(k->bev, on_linger_read, NULL, on_linger_event, k);
    bufferevent_setwatermark(k->bev, EV_READ, 0, 0);
    bufferevent_set_timeouts(k->bev, NULL, NULL);
    bufferevent_enable(k->bev, EV_READ);
    struct timeval tv = tv_ms(LINGER_MS);
    evtimer_add(k->deadline, &tv);
}

/* The reply has been written whole: the request is done with. */
static void reply_written(conn *k)
{
    runner *r = k->r;
    azf__http_req *q = k->req;
    int streamed_unread = q->streaming && !k->msg_done; /* the rest of its body: unread */
    k->req = NULL;
    r->replying--;
    k->phase = BUSY;
    if (q->refs)
        q->conn = NULL, q->replied = 1; /* freed when its callbacks return */
    else
        req_free(q);
    if (!k->keep_alive || k->broken || streamed_unread) {
        linger(k);
        return;
    }
    await_request(k);
    pump(k);
}

static void on_write(struct bufferevent *bev, void *arg)
{
    conn *k = arg;
    runner *r = k->r; /* k may be gone below */
    azf__http_req *q = k->req;
    (void)bev;
    if (q && q->replied && k->phase == WRITING) {
        reply_written(k);
    } else if (q && q->on_drained) {
        q->refs++;
        q->on_drained(q->drained_ud);
        req_unref(q);
    }
    azf__maybe_exit(r);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    conn *k = arg;
    (void)bev;
    if (k->phase == IDLE) /* the first bytes of a request start its deadline */
        arm(k, READING);
    pump(k);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    conn *k = arg;
    (void)bev;
    if (what & (BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
        conn_close(k, 1);
        return;
    }
    if (what & BEV_EVENT_EOF) {
        k->eof = 1;
        if (k->req && k->req->streaming && k->msg_done && !k->req->replied)
            conn_close(k, 1); /* a client that leaves a streamed reply is gone */
        else
            pump(k); /* the client closed its side: answer what it sent */
    }
}

static void on_accept(struct evconnlistener *lev, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    runner *r = arg;
    (void)lev, (void)sa, (void)salen;
    conn *k = azf__calloc(1, sizeof *k);
    if (k && fd >= r->conns_cap) {
        int cap = r->conns_cap ? r->conns_cap : 256;
        while (cap <= fd)
            cap *= 2;
        conn **t = azf__realloc(r->conns, (size_t)cap * sizeof *t);
        if (t) {
            memset(t + r->conns_cap, 0, (size_t)(cap - r->conns_cap) * sizeof *t);
            r->conns = t, r->conns_cap = cap;
        }
    }
    if (k && fd < r->conns_cap) {
        k->bev = bufferevent_socket_new(r->base, fd, BEV_OPT_CLOSE_ON_FREE);
        k->deadline = evtimer_new(r->base, on_deadline, k);
    }
    if (!k || !k->bev || !k->deadline) {
        if (k && k->bev)
            bufferevent_free(k->bev);
        else
            evutil_closesocket(fd);
        if (k && k->deadline)
            event_free(k->deadline);
        azf__free(k);
        return;
    }
    int one = 1; /* a streamed reply's pieces go out as they come */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    k->r = r;
    k->fd = fd;
    llhttp_init(&k->parser, HTTP_REQUEST, &settings);
    k->parser.data = k;
    r->conns[fd] = k;
    r->nconns++;
    if (r->accept_failing) {
        r->accept_failing = 0;
        say(C_YELLOW, "Accepting connections again");
    }
    if (r->nconns >= r->max_connections && !r->paused && r->listener) {
        evconnlistener_disable(r->listener);
        r->paused = 1;
    }
    azf__supervised_conn(fd, 1);
    bufferevent_setcb(k->bev, on_read, on_write, on_event, k);
    /* A reply that makes no progress for too long is cut (our deadlines end when a
     * reply starts). */
    struct timeval stall = stall_limit(r);
    bufferevent_set_timeouts(k->bev, NULL, &stall);
    bufferevent_setwatermark(k->bev, EV_READ, 0, READ_AHEAD);
    bufferevent_enable(k->bev, EV_READ);
    await_request(k);
}

void azf__http_attach(runner *r, azf__http_req *req, call *c)
{
    (void)r;
    if (req->conn)
        req->conn->active = c;
}

int azf__http_fd(runner *r, azf__http_req *req)
{
    (void)r;
    return req && req->conn ? req->conn->fd : -1;
}

/* ---- request bodies ---------------------------------------------------------------- */

static void release_body(void *data, void *user_data)
{
    (void)user_data;
    azf__free(data);
}

int azf__http_take_body(azf__http_req *req, azf_value **out)
{
    struct evbuffer *in = req->in_body;
    size_t n = evbuffer_get_length(in);
    *out = NULL;
    if (n == 0)
        return 0;
    /* One copy, piece by piece: the chains are freed as they are copied, so the body
     * is held twice for no longer than a piece. */
    char *data = azf__malloc(n);
    if (!data)
        return AZF_E_NOMEM;
    for (size_t at = 0; at < n;) { /* evbuffer_remove counts in int */
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

/* Hands what has arrived of a streamed body to its reader, then the end. */
static void deliver_body(azf__http_req *q, int ended)
{
    if (!q->on_piece)
        return;
    q->refs++;
    if (evbuffer_get_length(q->in_body) && !q->replied)
        q->on_piece(q->body_ud, q->in_body);
    if (ended)
        end_body(q, 1);
    req_unref(q);
}

void azf__http_body_stream(azf__http_req *req, azf__body_piece_fn on_piece, azf__body_end_fn on_end,
                           void *ud)
{
    req->on_piece = on_piece;
    req->on_end = on_end;
    req->body_ud = ud;
    conn *k = req->conn;
    if (!k) { /* the client has gone already */
        end_body(req, 0);
        return;
    }
    deliver_body(req, k->req == req && k->msg_done);
}

void azf__http_body_pause(azf__http_req *req, int paused)
{
    conn *k = req->conn;
    req->body_paused = paused;
    if (!k || k->req != req)
        return;
    if (paused)
        bufferevent_disable(k->bev, EV_READ);
    else
        pump(k); /* what is buffered, then reading again */
}

/* ---- replies ---------------------------------------------------------------------- */

static const char *reason_of(int code)
{
    static const struct {
        int code;
        const char *reason;
    } known[] = {
        {100, "Continue"},
        {200, "OK"},
        {201, "Created"},
        {202, "Accepted"},
        {204, "No Content"},
        {206, "Partial Content"},
        {301, "Moved Permanently"},
        {302, "Found"},
        {303, "See Other"},
        {304, "Not Modified"},
        {307, "Temporary Redirect"},
        {308, "Permanent Redirect"},
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {409, "Conflict"},
        {413, "Content Too Large"},
        {414, "URI Too Long"},
        {415, "Unsupported Media Type"},
        {417, "Expectation Failed"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {431, "Request Header Fields Too Large"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
        if (known[i].code == code)
            return known[i].reason;
    return code < 300 ? "OK" : code < 400 ? "Redirect" : code < 500 ? "Error" : "Server Error";
}

/* The Date field, formatted once a second. */
static const char *http_date(void)
{
    static char text[40];
    static time_t at;
    time_t now = time(NULL);
    if (now != at || !text[0]) {
        struct tm tm;
        gmtime_r(&now, &tm);
        strftime(text, sizeof text, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        at = now;
    }
    return text;
}

static int has_token(const char *value, const char *token)
{
    size_t n = strlen(token);
    for (const char *p = value; p && *p;) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (strncasecmp(p, token, n) == 0 && (!p[n] || p[n] == ',' || p[n] == ' ' || p[n] == '\t'))
            return 1;
        p = strchr(p, ',');
    }
    return 0;
}

/* The connection writes req's reply from now on: the status line and the headers.
 * length: the Content-Length, or -1 for a body in chunks (or till the close, HTTP/1.0). */
static conn *begin_reply(runner *r, azf__http_req *req, int code, const char *reason,
                         long long length)
{
    conn *k = req->conn;
    struct evkeyvalq *out = &req->out_headers;
    const char *c = evhttp_find_header(out, "Connection");
    if (!k)
        return NULL;
    if (r->stopping && !c) /* the last one on it */
        evhttp_add_header(out, "Connection", c = "close");
    if (length < 0 && req->minor == 0 && req->major == 1 && !req->no_body)
        k->keep_alive = 0; /* no chunks in HTTP/1.0: the body ends with the connection */
    if (c && has_token(c, "close"))
        k->keep_alive = 0;
    else if (!k->keep_alive || k->broken)
        evhttp_add_header(out, "Connection", c = "close");
    else if (req->minor == 0 && !c)
        evhttp_add_header(out, "Connection", "keep-alive");
    k->active = NULL;
    if (k->phase != WRITING)
        r->replying++;
    arm(k, WRITING);
    /* The head in one piece: one copy into the output buffer (which takes a lock). */
    azf_buf *b = &k->head;
    char line[64];
    int n = snprintf(line, sizeof line, "HTTP/1.1 %d ", code);
    b->size = 0;
    reason = reason ? reason : reason_of(code);
    int bad = azf_buf_append(b, line, (size_t)n) || azf_buf_append(b, reason, strlen(reason)) ||
              azf_buf_append(b, "\r\nDate: ", 8) || azf_buf_append(b, http_date(), 29) ||
              azf_buf_append(b, "\r\n", 2);
    for (const struct evkeyval *h = out->tqh_first; !bad && h; h = h->next.tqe_next)
        bad = azf_buf_append(b, h->key, strlen(h->key)) || azf_buf_append(b, ": ", 2) ||
              azf_buf_append(b, h->value, strlen(h->value)) || azf_buf_append(b, "\r\n", 2);
    if (length >= 0) {
        n = snprintf(line, sizeof line, "Content-Length: %lld\r\n\r\n", length);
        bad = bad || azf_buf_append(b, line, (size_t)n);
    } else if (!req->no_body && req->minor > 0) {
        req->chunked = 1;
        bad = bad || azf_buf_append(b, "Transfer-Encoding: chunked\r\n\r\n", 30);
    } else {
        bad = bad || azf_buf_append(b, "\r\n", 2);
    }
    if (bad) { /* out of memory */
        conn_close(k, 1);
        return NULL;
    }
    evbuffer_add(bufferevent_get_output(k->bev), b->ptr, b->size);
    return k;
}

/* No more reading while a reply is written: a client that half-closed after its
 * requests must still get every reply (a closed socket still fails the write), and the
 * next pipelined request waits its turn. */
static void reading_off_while_replying(conn *k, azf__http_req *req)
{
    if (!req->streaming || k->msg_done || k->broken)
        bufferevent_disable(k->bev, EV_READ);
}

void azf__http_send(runner *r, azf__http_req *req, int code, const char *reason)
{
    struct evbuffer *body = req->out_body;
    size_t n = evbuffer_get_length(body);
    if (!req->conn) {
        req_release_gone(req);
        return;
    }
    /* RFC 9110 6.4.1, 8.6: no content in 1xx, 204 and 304 responses, nor in a reply to
     * HEAD (which says how long the GET body would be); no Content-Length in 1xx/204. */
    long long length = (long long)n;
    if (code < 200 || code == 204 || code == 304) {
        evbuffer_drain(body, n);
        req->no_body = 1;
        length = code == 304 ? -1 : length;
    } else if (req->method == HTTP_HEAD) {
        evbuffer_drain(body, n);
    }
    if (req->no_body) {
        evhttp_remove_header(&req->out_headers, "Content-Length");
        evhttp_remove_header(&req->out_headers, "Transfer-Encoding");
    }
    conn *k = begin_reply(r, req, code, reason, req->no_body ? -1 : length);
    if (!k)
        return;
    evbuffer_add_buffer(bufferevent_get_output(k->bev), body);
    req->replied = 1;
    reading_off_while_replying(k, req);
}

void azf__http_send_start(runner *r, azf__http_req *req, int code, const char *reason)
{
    if (!req->conn)
        return;
    req->no_body = code < 200 || code == 204 || code == 304 || req->method == HTTP_HEAD;
    if (req->no_body) {
        evhttp_remove_header(&req->out_headers, "Content-Length");
        evhttp_remove_header(&req->out_headers, "Transfer-Encoding");
    }
    begin_reply(r, req, code, reason, -1);
}

void azf__http_send_piece(runner *r, azf__http_req *req, struct evbuffer *piece)
{
    size_t n = evbuffer_get_length(piece);
    (void)r;
    if (!req->conn || req->no_body || !n) {
        evbuffer_drain(piece, n);
        return;
    }
    struct evbuffer *o = bufferevent_get_output(req->conn->bev);
    if (req->chunked) {
        char size[24];
        int len = snprintf(size, sizeof size, "%zx\r\n", n);
        evbuffer_add(o, size, (size_t)len);
        evbuffer_add_buffer(o, piece);
        evbuffer_add(o, "\r\n", 2);
    } else {
        evbuffer_add_buffer(o, piece);
    }
}

void azf__http_send_end(runner *r, azf__http_req *req)
{
    (void)r;
    conn *k = req->conn;
    if (!k) {
        req_release_gone(req);
        return;
    }
    if (req->chunked)
        evbuffer_add(bufferevent_get_output(k->bev), "0\r\n\r\n", 5);
    req->replied = 1;
    reading_off_while_replying(k, req);
    if (!evbuffer_get_length(bufferevent_get_output(k->bev)))
        reply_written(k); /* nothing left to write: no write callback will come */
}

void azf__http_send_abort(runner *r, azf__http_req *req)
{
    (void)r;
    conn *k = req->conn;
    if (!k) {
        req_release_gone(req);
        return;
    }
    req->replied = 1;
    req->on_piece = NULL, req->on_drained = NULL;
    conn_close(k, 0); /* what is written stays: the client sees where it was cut */
}

void azf__http_reply_text(runner *r, azf__http_req *req, int code, const char *reason,
                          const char *text)
{
    if (text) {
        evhttp_add_header(&req->out_headers, "Content-Type", "text/plain; charset=utf-8");
        evbuffer_add(req->out_body, text, strlen(text));
    }
    azf__http_send(r, req, code, reason);
}

/* A framing or limit error: the rest of the stream cannot be trusted. */
static void refuse(conn *k, int code, const char *text)
{
    k->broken = 1;
    azf__http_req *q = k->req;
    if (!q && !(q = k->req = req_new(k))) {
        conn_close(k, 1);
        return;
    }
    if (k->dispatched) { /* its holder answers; the body it reads ends badly */
        bufferevent_disable(k->bev, EV_READ);
        end_body(q, 0);
        return;
    }
    k->dispatched = 1;
    arm(k, BUSY);
    evhttp_clear_headers(&q->out_headers);
    evbuffer_drain(q->out_body, evbuffer_get_length(q->out_body));
    evhttp_add_header(&q->out_headers, "Connection", "close");
    azf__http_reply_text(k->r, q, code, NULL, text);
}

/* ---- parsing (llhttp's callbacks: they only collect, and stop the parser where the
 * connection has something to do) ---- */

static int on_message_begin(llhttp_t *p)
{
    conn *k = p->data;
    if (!(k->req = req_new(k)))
        return HPE_USER;
    k->url.size = k->field.size = k->value.size = 0;
    return 0;
}

static int add_to(azf_buf *b, const char *at, size_t n)
{
    return azf_buf_append(b, at, n) ? HPE_USER : 0;
}

static int on_url(llhttp_t *p, const char *at, size_t n)
{
    conn *k = p->data;
    if ((long long)(k->url.size + n) + 18 > k->r->max_request_line) { /* method, version */
        k->refuse = 414;
        return HPE_USER;
    }
    return add_to(&k->url, at, n);
}

static int header_bytes(conn *k, size_t n)
{
    k->header_bytes += (long long)n;
    if (k->header_bytes + 4 * (k->header_count + 1) > k->r->max_header_bytes) {
        k->refuse = 431;
        return HPE_USER;
    }
    return 0;
}

static int on_header_field(llhttp_t *p, const char *at, size_t n)
{
    conn *k = p->data;
    return header_bytes(k, n) ? HPE_USER : add_to(&k->field, at, n);
}

static int on_header_value(llhttp_t *p, const char *at, size_t n)
{
    conn *k = p->data;
    return header_bytes(k, n) ? HPE_USER : add_to(&k->value, at, n);
}

static int on_header_value_complete(llhttp_t *p)
{
    conn *k = p->data;
    if (++k->header_count > k->r->max_header_count) { /* 431 after the body limit's 413 */
        k->field.size = k->value.size = 0;
        return 0;
    }
    if (add_to(&k->field, "", 0) || add_to(&k->value, "", 0))
        return HPE_USER;
    while (k->value.size &&
           (k->value.ptr[k->value.size - 1] == ' ' || k->value.ptr[k->value.size - 1] == '\t'))
        k->value.ptr[--k->value.size] = '\0';
    int rc = evhttp_add_header(&k->req->in_headers, k->field.ptr, k->value.ptr);
    k->field.size = k->value.size = 0;
    return rc ? HPE_USER : 0;
}

static int on_headers_complete(llhttp_t *p)
{
    conn *k = p->data;
    k->head_done = 1;
    return HPE_PAUSED;
}

static int on_body(llhttp_t *p, const char *at, size_t n)
{
    conn *k = p->data;
    k->body_bytes += n;
    if (k->body_bytes > (unsigned long long)k->r->max_body) {
        k->refuse = 413;
        return HPE_USER;
    }
    return evbuffer_add(k->req->in_body, at, n) ? HPE_USER : 0;
}

static int on_message_complete(llhttp_t *p)
{
    conn *k = p->data;
    k->msg_done = 1;
    return HPE_PAUSED;
}

/* ---- requests through the gate ------------------------------------------------------ */

static int allowed_method(llhttp_method_t m)
{
    return m == HTTP_GET || m == HTTP_POST || m == HTTP_HEAD || m == HTTP_PUT || m == HTTP_DELETE ||
           m == HTTP_OPTIONS || m == HTTP_PATCH;
}

/* The head is in: the checks llhttp leaves to its user (RFC 9112 6.1-6.3), 100-continue,
 * and whether the request is dispatched now (its body streamed) or once read. */
static void on_head(conn *k)
{
    runner *r = k->r;
    azf__http_req *q = k->req;
    llhttp_t *p = &k->parser;
    q->method = (llhttp_method_t)llhttp_get_method(p);
    q->major = llhttp_get_http_major(p);
    q->minor = llhttp_get_http_minor(p);
    k->keep_alive = llhttp_should_keep_alive(p);
    if (add_to(&k->url, "", 0) || !(q->target = azf__strdup(k->url.ptr))) {
        conn_close(k, 1);
        return;
    }
    const char *te = NULL, *expect = NULL;
    int tes = 0;
    for (const struct evkeyval *h = q->in_headers.tqh_first; h; h = h->next.tqe_next) {
        if (strcasecmp(h->key, "Transfer-Encoding") == 0)
            te = h->value, tes++;
        else if (strcasecmp(h->key, "Expect") == 0)
            expect = h->value;
    }
    if (te && (tes > 1 || strcasecmp(te, "chunked") != 0)) {
        refuse(k, 501, "only the chunked transfer coding is supported\n");
        return;
    }
    if (!allowed_method(q->method)) {
        refuse(k, 501, NULL);
        return;
    }
    if (!(q->uri = evhttp_uri_parse_with_flags(q->target, EVHTTP_URI_NONCONFORMANT))) {
        refuse(k, 400, "invalid request target\n");
        return;
    }
    int has_body = (p->flags & F_CHUNKED) || p->content_length > 0;
    if ((p->flags & F_CONTENT_LENGTH) && p->content_length > (uint64_t)r->max_body) {
        refuse(k, 413, NULL);
        return;
    }
    if (k->header_count > r->max_header_count) {
        refuse(k, 431, NULL);
        return;
    }
    if (expect && q->minor > 0) {
        if (strcasecmp(expect, "100-continue") != 0) {
            refuse(k, 417, NULL);
            return;
        }
        /* Unless its body is on the way already. */
        if (has_body && !evbuffer_get_length(bufferevent_get_input(k->bev)))
            evbuffer_add_printf(bufferevent_get_output(k->bev), "HTTP/1.1 100 Continue\r\n\r\n");
    }
    if ((!r->stopping || k->admit) && azf__route_streams(r, q)) {
        q->streaming = 1;
        /* No request deadline for a body that may take long: an inactivity timeout
         * while it is read. */
        struct timeval rt = tv_ms(r->read_timeout_ms), wt = stall_limit(r);
        bufferevent_set_timeouts(k->bev, &rt, &wt);
    }
}

/* The request goes to routing (after its head when streamed, else once read whole). */
static void dispatch(conn *k)
{
    runner *r = k->r;
    azf__http_req *q = k->req;
    k->dispatched = 1;
    arm(k, BUSY);
    k->requests++;
    if (r->stopping && !k->admit) {
        k->keep_alive = 0;
        azf__http_reply_text(r, q, 503, "Service Unavailable", NULL);
        return;
    }
    unadmit(k);
    azf__route_request(r, q);
}

static void on_message(conn *k)
{
    azf__http_req *q = k->req;
    if (q->streaming) {
        struct timeval wt = stall_limit(k->r);
        bufferevent_set_timeouts(k->bev, NULL, &wt);
        deliver_body(q, 1);
        return;
    }
    dispatch(k);
}

static void on_parse_error(conn *k, llhttp_errno_t e)
{
    int code = k->refuse ? k->refuse : e == HPE_INVALID_TRANSFER_ENCODING ? 501 : 400;
    char text[160];
    snprintf(text, sizeof text, "%s\n", llhttp_get_error_reason(&k->parser));
    refuse(k, code, code == 400 ? text : NULL);
}

/* Feeds what has been read to the parser and acts on where it stops, until it has to
 * wait: for more bytes, for a reply, or for a paused body reader. */
static void pump(conn *k)
{
    if (k->depth)
        return;
    k->depth++;
    struct evbuffer *in = bufferevent_get_input(k->bev);
    while (!k->closing && !k->broken) {
        azf__http_req *q = k->req;
        if (q && (k->msg_done || (q->streaming && q->body_paused)))
            break; /* answering it, or its reader wants no more for now */
        struct evbuffer_iovec v = {(void *)"", 0};
        if ((evbuffer_peek(in, -1, NULL, &v, 1) < 1 || v.iov_len == 0) && !k->kick) {
            if (k->eof && q && q->streaming && k->dispatched && !q->body_ended)
                refuse(k, 400, NULL); /* the client closed before its body ended */
            break;
        }
        /* After a pause at the end of a head, a message without a body completes with
         * no more bytes: an empty execute says so. */
        k->kick = 0;
        llhttp_errno_t e = llhttp_execute(&k->parser, v.iov_base, v.iov_len);
        size_t used = v.iov_len;
        if (e != HPE_OK)
            used = (size_t)(llhttp_get_error_pos(&k->parser) - (const char *)v.iov_base);
        if (k->req && k->req->streaming && k->dispatched)
            deliver_body(k->req, 0);
        if (e == HPE_PAUSED || e == HPE_PAUSED_UPGRADE) {
            evbuffer_drain(in, used);
            if (e == HPE_PAUSED)
                llhttp_resume(&k->parser);
            else /* no upgrades here: the next bytes are the next request */
                llhttp_resume_after_upgrade(&k->parser);
            if (k->head_done && !k->dispatched) {
                k->head_done = 0;
                k->kick = 1;
                on_head(k);
                if (!k->broken && !k->closing && k->req->streaming)
                    dispatch(k);
            } else if (k->msg_done) {
                on_message(k);
            }
        } else if (e != HPE_OK) {
            evbuffer_drain(in, used);
            on_parse_error(k, e);
        } else {
            evbuffer_drain(in, used);
        }
    }
    k->depth--;
    if (k->closing) {
        conn_close(k, k->closing == 2);
        return;
    }
    if (k->phase == LINGER) /* its last reply went out meanwhile */
        return;
    azf__http_req *q = k->req;
    /* Reading: a request's head and body; and while a streamed request is answered,
     * to notice a client that leaves (what it sends next waits in the input buffer,
     * up to the read watermark). */
    int wants =
        !k->broken && !k->eof &&
        (!q || (q->streaming ? !q->body_paused || k->msg_done : !k->msg_done && !q->replied));
    if (wants)
        bufferevent_enable(k->bev, EV_READ);
    else
        bufferevent_disable(k->bev, EV_READ);
    if (k->eof && !evbuffer_get_length(in) && (!q || !k->dispatched))
        conn_close(k, 0); /* nothing more will come: an unfinished request is dropped */
}

/* ---- listening --------------------------------------------------------------------- */

int azf__http_start(runner *r)
{
    const azf__runner_opts *o = r->o;
    llhttp_settings_init(&settings);
    settings.on_message_begin = on_message_begin;
    settings.on_url = on_url;
    settings.on_header_field = on_header_field;
    settings.on_header_value = on_header_value;
    settings.on_header_value_complete = on_header_value_complete;
    settings.on_headers_complete = on_headers_complete;
    settings.on_body = on_body;
    settings.on_message_complete = on_message_complete;
    if (!(r->resume = evtimer_new(r->base, on_resume, r))) {
        fprintf(stderr, "azfunc start: cannot create the event loop\n");
        return -1;
    }
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE;
    if (r->listen_fd >= 0) {
        evutil_make_socket_nonblocking(r->listen_fd);
        r->listener = evconnlistener_new(r->base, on_accept, r, flags, -1, r->listen_fd);
    } else {
        struct evutil_addrinfo hints = {0}, *ai = NULL;
        char port[16];
        snprintf(port, sizeof port, "%d", o->port);
        hints.ai_family = AF_UNSPEC;
        hints.ai_socktype = SOCK_STREAM;
        hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_ADDRCONFIG;
        if (evutil_getaddrinfo(o->host, port, &hints, &ai) == 0 && ai) {
            r->listener = evconnlistener_new_bind(r->base, on_accept, r, flags, 128, ai->ai_addr,
                                                  (int)ai->ai_addrlen);
            evutil_freeaddrinfo(ai);
        }
    }
    if (!r->listener) {
        fprintf(stderr, "azfunc start: cannot listen on %s:%d\n", o->host, o->port);
        return -1;
    }
    evconnlistener_set_error_cb(r->listener, on_accept_error);
    return 0;
}

/* How long a connection accepted before a handover, with no request yet, may take to
 * send it: a client that connected just before has its request on the way. */
enum { HANDOVER_WAIT_MS = 5000 };

void azf__http_handover(runner *r)
{
    /* Admitted first: closing a connection checks whether the process may end. */
    for (int fd = 0; fd < r->conns_cap; fd++) {
        conn *k = r->conns[fd];
        if (!k || k->phase == BUSY || k->phase == WRITING || /* closed after the reply */
            k->phase == LINGER || (k->phase == IDLE && k->requests > 0))
            continue;
        k->admit = 1;
        r->admitted++;
        if (k->phase == IDLE) {
            struct timeval tv = tv_ms(HANDOVER_WAIT_MS);
            evtimer_add(k->deadline, &tv);
        }
    }
    for (int fd = 0; fd < r->conns_cap; fd++) { /* kept alive: the client reconnects */
        conn *k = r->conns[fd];
        if (k && k->phase == IDLE && k->requests > 0)
            conn_close(k, 0);
    }
}

/* Stops accepting (shutdown). */
void azf__http_stop_accepting(runner *r)
{
    if (r->listener)
        evconnlistener_free(r->listener);
    r->listener = NULL;
}

void azf__http_free(runner *r)
{
    azf__http_stop_accepting(r);
    for (int fd = 0; fd < r->conns_cap; fd++)
        if (r->conns[fd])
            conn_close(r->conns[fd], 0);
}
