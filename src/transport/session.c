/* The no-I/O gRPC-over-HTTP/2 session on nghttp2, client and server roles. */
#include "azfunc/codec.h"
#include "transport_internal.h"

#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <string.h>

/* Flow control: windows as large as HTTP/2 allows, so large messages never wait
 * for WINDOW_UPDATE round trips; nghttp2 refills them as data is consumed. */
#define WINDOW_MAX 0x7fffffff
#define MAX_FRAME_SIZE (1u << 20)

typedef struct out_msg {
    struct out_msg *next;
    azf_buf buf;
    size_t off; /* bytes of header + payload already handed to nghttp2 */
    uint8_t hdr[AZF_FRAME_HEADER_SIZE];
} out_msg;

typedef struct stream {
    struct stream *prev, *next;
    int32_t id;
    azf_frame_reader *reader;
    out_msg *head, *tail;
    int deferred;     /* the data provider returned DEFERRED */
    int closing;      /* end our side once the queue is empty */
    int ended;        /* END_STREAM or trailers submitted */
    int status;       /* server: trailer status to send */
    char *message;    /* server: trailer message to send */
    int rx_status;    /* client: received grpc-status, -1 when none */
    char *rx_message; /* client: received grpc-message */
    int http_status;  /* client: :status */
    int rx_ctype_ok;  /* client: the response's content-type is application/grpc */
    int fail_status;  /* set when we failed the stream (-1: not failed) */
    char *fail_message;
    int local_reset;
    /* server: request header checks */
    int method_ok, path_ok, ctype_ok;
} stream;

struct azf_session {
    nghttp2_session *ng;
    int role;
    azf_transport_opts opts;
    azf_transport_callbacks cbs;
    void *ud;
    stream *streams; /* open streams (few: one per EventStream call) */
    int failed;      /* fatal error: the session is over */
    int user_abort;
    int nomem; /* a callback failed for lack of memory (not the peer's fault) */
    int local_goaway;
    int peer_goaway;
    char ng_err[256]; /* the last message nghttp2 gave through error_callback2 */
    azf__errmsg err;
    atomic_size_t *queued; /* the driver's count of bytes waiting to go out, or NULL */
};

/* ---- helpers ------------------------------------------------------------ */

static void fail(azf_session *s, int code, const char *fmt, const char *detail)
{
    if (!s->failed) {
        s->failed = code;
        azf__err(&s->err, code, fmt, detail);
        if (s->cbs.on_error)
            s->cbs.on_error(code, s->err.text, s->ud);
    }
}

static char *pct_encode(const char *m)
{
    size_t n = strlen(m);
    char *out = azf__malloc(n * 3 + 1), *p = out;
    if (!out)
        return NULL;
    for (const unsigned char *c = (const unsigned char *)m; *c; c++) {
        if (*c < 0x20 || *c > 0x7e || *c == '%')
            p += sprintf(p, "%%%02X", *c);
        else
            *p++ = (char)*c;
    }
    *p = '\0';
    return out;
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static char *pct_decode(const uint8_t *v, size_t n)
{
    char *out = azf__malloc(n + 1), *p = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int h, l;
        if (v[i] == '%' && i + 2 < n + 0 && (h = hexval(v[i + 1])) >= 0 &&
            (l = hexval(v[i + 2])) >= 0) {
            *p++ = (char)(h * 16 + l);
            i += 2;
        } else {
            *p++ = (char)v[i];
        }
    }
    *p = '\0';
    return out;
}

static stream *stream_new(azf_session *s)
{
    stream *st = azf__calloc(1, sizeof *st);
    if (!st)
        return NULL;
    if (azf_frame_reader_new(&st->reader, s->opts.max_message_length)) {
        azf__free(st);
        return NULL;
    }
    st->rx_status = -1;
    st->fail_status = -1;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    return st;
}

/* Frees a message taken off a stream's queue: its bytes no longer wait to go out. */
static void out_msg_done(azf_session *s, out_msg *m)
{
    if (s->queued)
        atomic_fetch_sub(s->queued, m->buf.size);
    azf_buf_dispose(&m->buf);
    azf__free(m);
}

static void queue_clear(azf_session *s, stream *st)
{
    while (st->head) {
        out_msg *m = st->head;
        st->head = m->next;
        out_msg_done(s, m);
    }
    st->tail = NULL;
}

void azf__session_count_queued(azf_session *s, atomic_size_t *counter)
{
    s->queued = counter;
}

static void stream_free(azf_session *s, stream *st)
{
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    queue_clear(s, st);
    azf_frame_reader_free(st->reader);
    azf__free(st->message);
    azf__free(st->rx_message);
    azf__free(st->fail_message);
    azf__free(st);
}

static stream *find(azf_session *s, uint64_t id)
{
    /* Our own list: a client stream is unknown to nghttp2 until its HEADERS are sent. */
    for (stream *st = s->streams; st; st = st->next)
        if ((uint64_t)st->id == id)
            return st;
    return NULL;
}

#define NV(n, v)                                                                                   \
    {                                                                                              \
        (uint8_t *)(n), (uint8_t *)(v), sizeof(n) - 1, strlen(v), NGHTTP2_NV_FLAG_NO_COPY_NAME     \
    }

static int submit_trailers(azf_session *s, stream *st, int with_status_line)
{
    char status[16];
    snprintf(status, sizeof status, "%d", st->status);
    char *msg = pct_encode(st->message ? st->message : "");
    if (!msg)
        return NGHTTP2_ERR_NOMEM;
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc"),
                        NV("grpc-status", status), NV("grpc-message", msg)};
    size_t off = with_status_line ? 0 : 2, n = (msg[0] ? 4 : 3) - off;
    int rv;
    if (with_status_line) /* trailers-only response */
        rv = nghttp2_submit_response(s->ng, st->id, nva + off, n, NULL);
    else
        rv = nghttp2_submit_trailer(s->ng, st->id, nva + off, n);
    azf__free(msg);
    st->ended = 1;
    return rv;
}

/* Data provider: pulls framed messages from the stream's queue, several per
 * DATA frame when they are small, without copying whole messages elsewhere. */
static ssize_t read_cb(nghttp2_session *ng, int32_t sid, uint8_t *buf, size_t length,
                       uint32_t *flags, nghttp2_data_source *src, void *ud)
{
    (void)ng;
    (void)sid;
    azf_session *s = ud;
    stream *st = src->ptr;
    size_t n = 0;
    while (n < length && st->head) {
        out_msg *m = st->head;
        size_t total = AZF_FRAME_HEADER_SIZE + m->buf.size;
        while (n < length && m->off < AZF_FRAME_HEADER_SIZE)
            buf[n++] = m->hdr[m->off++];
        size_t body_off = m->off - AZF_FRAME_HEADER_SIZE;
        size_t take = m->buf.size - body_off;
        if (take > length - n)
            take = length - n;
        if (take) {
            memcpy(buf + n, m->buf.ptr + body_off, take);
            n += take;
            m->off += take;
        }
        if (m->off == total) {
            st->head = m->next;
            if (!st->head)
                st->tail = NULL;
            out_msg_done(s, m);
        }
    }
    if (!st->head && st->closing) {
        *flags |= NGHTTP2_DATA_FLAG_EOF;
        if (s->role == AZF_ROLE_SERVER) {
            *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
            if (submit_trailers(s, st, 0))
                return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        st->ended = 1;
        return (ssize_t)n;
    }
    if (n == 0) {
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    return (ssize_t)n;
}

static void resume(azf_session *s, stream *st)
{
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(s->ng, st->id);
    }
}

/* Fails one stream: a server answers with trailers (if it can), a client resets. */
static void fail_stream(azf_session *s, stream *st, int status, const char *msg)
{
    if (st->fail_status >= 0)
        return;
    st->fail_status = status;
    st->fail_message = azf__strdup(msg);
    if (s->role == AZF_ROLE_SERVER && !st->ended) {
        queue_clear(s, st);
        st->status = status;
        azf__free(st->message);
        st->message = azf__strdup(msg);
        st->closing = 1;
        resume(s, st);
    } else {
        nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    }
}

/* ---- nghttp2 callbacks -------------------------------------------------- */

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    azf_session *s = ud;
    if (s->role != AZF_ROLE_SERVER || frame->hd.type != NGHTTP2_HEADERS ||
        frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    stream *st = stream_new(s);
    if (!st) {
        s->nomem = 1;
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    st->id = frame->hd.stream_id;
    nghttp2_session_set_stream_user_data(ng, st->id, st);
    return 0;
}

#define IS(name, lit) (namelen == sizeof(lit) - 1 && memcmp(name, lit, namelen) == 0)

/* "application/grpc", optionally followed by "+proto" or "; params". */
static int is_grpc_content_type(const uint8_t *value, size_t valuelen)
{
    return valuelen >= 16 && memcmp(value, "application/grpc", 16) == 0 &&
           (valuelen == 16 || value[16] == '+' || value[16] == ';');
}

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t namelen, const uint8_t *value, size_t valuelen, uint8_t flags, void *ud)
{
    (void)flags;
    azf_session *s = ud;
    stream *st = nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS)
        return 0;
    if (s->role == AZF_ROLE_SERVER) {
        if (IS(name, ":method"))
            st->method_ok = valuelen == 4 && memcmp(value, "POST", 4) == 0;
        else if (IS(name, ":path"))
            st->path_ok = valuelen == strlen(AZF_GRPC_EVENTSTREAM_PATH) &&
                          memcmp(value, AZF_GRPC_EVENTSTREAM_PATH, valuelen) == 0;
        else if (IS(name, "content-type"))
            st->ctype_ok = is_grpc_content_type(value, valuelen);
        return 0;
    }
    if (IS(name, "content-type") && frame->headers.cat == NGHTTP2_HCAT_RESPONSE)
        st->rx_ctype_ok = is_grpc_content_type(value, valuelen);
    if (IS(name, ":status")) {
        st->http_status = 0;
        for (size_t i = 0; i < valuelen && value[i] >= '0' && value[i] <= '9'; i++)
            st->http_status = st->http_status * 10 + (value[i] - '0');
    } else if (IS(name, "grpc-status")) {
        /* Anything but 1-3 digits is malformed, and gRPC reads it as UNKNOWN, never OK. */
        int v = 0, ok = valuelen > 0 && valuelen <= 3;
        for (size_t i = 0; ok && i < valuelen; i++) {
            ok = value[i] >= '0' && value[i] <= '9';
            v = v * 10 + (value[i] - '0');
        }
        st->rx_status = ok ? v : AZF_GRPC_UNKNOWN;
        if (!ok && st->fail_status < 0)
            fail_stream(s, st, AZF_GRPC_UNKNOWN, "the server sent a malformed grpc-status");
    } else if (IS(name, "grpc-message")) {
        azf__free(st->rx_message);
        st->rx_message = pct_decode(value, valuelen);
    }
    return 0;
}

/* Server: a request's headers are complete: accept the call or refuse it. */
static int accept_request(azf_session *s, stream *st)
{
    if (!st->method_ok || !st->ctype_ok || !st->path_ok) {
        st->status = st->path_ok ? AZF_GRPC_INVALID_ARGUMENT : AZF_GRPC_UNIMPLEMENTED;
        st->message = azf__strdup(
            !st->path_ok ? "unknown method: only " AZF_GRPC_EVENTSTREAM_PATH " is served"
                         : "bad request: expected POST with content-type application/grpc");
        st->fail_status = st->status;
        st->fail_message = azf__strdup(st->message ? st->message : "");
        if (submit_trailers(s, st, 1)) {
            s->nomem = 1;
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
    }
    nghttp2_nv nva[] = {NV(":status", "200"), NV("content-type", "application/grpc")};
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
    if (nghttp2_submit_response(s->ng, st->id, nva, 2, &prd)) {
        s->nomem = 1; /* the only failure left for a valid stream */
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    }
    return 0;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    azf_session *s = ud;
    stream *st =
        frame->hd.stream_id ? nghttp2_session_get_stream_user_data(ng, frame->hd.stream_id) : NULL;
    switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
        if (!st)
            break;
        if (s->role == AZF_ROLE_SERVER && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
            return accept_request(s, st);
        if (s->role == AZF_ROLE_CLIENT && frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
            st->http_status != 200 && st->fail_status < 0) {
            char m[64];
            snprintf(m, sizeof m, "the server answered HTTP status %d", st->http_status);
            fail_stream(s, st, AZF_GRPC_UNAVAILABLE, m);
        } else if (s->role == AZF_ROLE_CLIENT && frame->headers.cat == NGHTTP2_HCAT_RESPONSE &&
                   !st->rx_ctype_ok && st->fail_status < 0) {
            fail_stream(s, st, AZF_GRPC_UNKNOWN,
                        "the server's response content-type is not application/grpc");
        }
        break;
    case NGHTTP2_GOAWAY:
        s->peer_goaway = 1;
        if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
            char m[200];
            snprintf(
                m, sizeof m, "%s: %.*s", nghttp2_http2_strerror(frame->goaway.error_code),
                (int)(frame->goaway.opaque_data_len > 120 ? 120 : frame->goaway.opaque_data_len),
                frame->goaway.opaque_data ? (const char *)frame->goaway.opaque_data : "");
            fail(s, AZF_E_PROTOCOL, "the peer ended the connection with GOAWAY %s", m);
        }
        break;
    default:
        break;
    }
    /* Client: the server finished the call; end our half too. */
    if (st && s->role == AZF_ROLE_CLIENT && (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        !nghttp2_session_get_stream_local_close(ng, st->id))
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *ud)
{
    azf_session *s = ud;
    if (frame->hd.type == NGHTTP2_GOAWAY && frame->goaway.error_code != NGHTTP2_NO_ERROR &&
        !s->local_goaway)
        fail(s, AZF_E_PROTOCOL, "HTTP/2 protocol error: %s",
             s->ng_err[0] ? s->ng_err : nghttp2_http2_strerror(frame->goaway.error_code));
    /* Server: the response is complete while the client still sends: reset with
     * NO_ERROR as HTTP/2 allows, so the client stops. */
    if (s->role == AZF_ROLE_SERVER && frame->hd.stream_id &&
        (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) &&
        (frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
        !nghttp2_session_get_stream_remote_close(ng, frame->hd.stream_id))
        nghttp2_submit_rst_stream(ng, NGHTTP2_FLAG_NONE, frame->hd.stream_id, NGHTTP2_NO_ERROR);
    return 0;
}

static int on_data(nghttp2_session *ng, uint8_t flags, int32_t sid, const uint8_t *data, size_t len,
                   void *ud)
{
    (void)flags;
    azf_session *s = ud;
    stream *st = nghttp2_session_get_stream_user_data(ng, sid);
    while (st && st->fail_status < 0 && len) {
        size_t used = 0;
        int rc = azf_frame_reader_feed(st->reader, data, len, &used);
        data += used;
        len -= used;
        if (rc == 1) {
            const uint8_t *msg;
            size_t mlen;
            azf_frame_reader_message(st->reader, &msg, &mlen);
            if (s->cbs.on_message && s->cbs.on_message((uint64_t)sid, msg, mlen, s->ud)) {
                s->user_abort = 1;
                return NGHTTP2_ERR_CALLBACK_FAILURE;
            }
        } else if (rc < 0) {
            fail_stream(s, st, rc == AZF_E_TOOBIG ? AZF_GRPC_RESOURCE_EXHAUSTED : AZF_GRPC_INTERNAL,
                        azf_frame_reader_errmsg(st->reader));
        }
    }
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t sid, uint32_t error_code, void *ud)
{
    azf_session *s = ud;
    stream *st = nghttp2_session_get_stream_user_data(ng, sid);
    if (!st)
        return 0;
    int status;
    const char *msg;
    char m[160];
    if (st->fail_status >= 0) {
        status = st->fail_status;
        msg = st->fail_message ? st->fail_message : "";
    } else if (!st->local_reset && azf_frame_reader_pending(st->reader) > 0) {
        /* The peer ended the stream in the middle of a message: gRPC's INTERNAL. */
        snprintf(m, sizeof m, "the stream ended in the middle of a gRPC message (%zu bytes of it)",
                 azf_frame_reader_pending(st->reader));
        status = AZF_GRPC_INTERNAL;
        msg = m;
    } else if (s->role == AZF_ROLE_CLIENT && st->rx_status >= 0) {
        status = st->rx_status;
        msg = st->rx_message ? st->rx_message : "";
    } else if (s->role == AZF_ROLE_SERVER && st->ended && error_code == NGHTTP2_NO_ERROR) {
        status = st->status;
        msg = st->message ? st->message : "";
    } else if (st->local_reset) {
        status = AZF_GRPC_CANCELLED;
        msg = "stream reset locally";
    } else if (error_code != NGHTTP2_NO_ERROR) {
        status = error_code == NGHTTP2_REFUSED_STREAM ? AZF_GRPC_UNAVAILABLE
                 : error_code == NGHTTP2_CANCEL       ? AZF_GRPC_CANCELLED
                                                      : AZF_GRPC_INTERNAL;
        snprintf(m, sizeof m, "stream reset by the peer (%s)", nghttp2_http2_strerror(error_code));
        msg = m;
    } else {
        status = AZF_GRPC_INTERNAL;
        msg = s->role == AZF_ROLE_CLIENT ? "the server closed the stream without grpc-status"
                                         : "the stream closed before a status was sent";
    }
    nghttp2_session_set_stream_user_data(ng, sid, NULL);
    if (s->cbs.on_stream_close)
        s->cbs.on_stream_close((uint64_t)sid, status, msg, s->ud);
    stream_free(s, st);
    return 0;
}

static int on_ng_error(nghttp2_session *ng, int lib_error_code, const char *msg, size_t len,
                       void *ud)
{
    (void)ng;
    (void)lib_error_code;
    azf_session *s = ud;
    snprintf(s->ng_err, sizeof s->ng_err, "%.*s", (int)len, msg);
    return 0;
}

static ssize_t read_length_cb(nghttp2_session *ng, uint8_t type, int32_t sid, int32_t conn_win,
                              int32_t stream_win, uint32_t max_frame, void *ud)
{
    (void)ng;
    (void)type;
    (void)sid;
    (void)ud;
    ssize_t n = conn_win < stream_win ? conn_win : stream_win;
    if ((ssize_t)max_frame < n)
        n = (ssize_t)max_frame;
    return n > 0 ? n : 1;
}

/* ---- public API --------------------------------------------------------- */

int azf_session_new(azf_session **out, int role, const azf_transport_opts *opts,
                    const azf_transport_callbacks *cbs, void *user_data)
{
    if (!out || (role != AZF_ROLE_CLIENT && role != AZF_ROLE_SERVER))
        return AZF_E_INVALID;
    azf_session *s = azf__calloc(1, sizeof *s);
    if (!s)
        return AZF_E_NOMEM;
    if (azf__transport_opts_copy(&s->opts, opts)) {
        azf__free(s);
        return AZF_E_NOMEM;
    }
    s->role = role;
    s->ud = user_data;
    if (cbs)
        s->cbs = *cbs;
    nghttp2_session_callbacks *cb;
    if (nghttp2_session_callbacks_new(&cb)) {
        azf_session_free(s);
        return AZF_E_NOMEM;
    }
    nghttp2_session_callbacks_set_on_begin_headers_callback(cb, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cb, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cb, on_frame_recv);
    nghttp2_session_callbacks_set_on_frame_send_callback(cb, on_frame_send);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cb, on_data);
    nghttp2_session_callbacks_set_on_stream_close_callback(cb, on_stream_close);
    nghttp2_session_callbacks_set_error_callback2(cb, on_ng_error);
    nghttp2_session_callbacks_set_data_source_read_length_callback(cb, read_length_cb);
    int rv = role == AZF_ROLE_CLIENT ? nghttp2_session_client_new(&s->ng, cb, s)
                                     : nghttp2_session_server_new(&s->ng, cb, s);
    nghttp2_session_callbacks_del(cb);
    if (rv) {
        azf_session_free(s);
        return AZF_E_NOMEM;
    }
    nghttp2_settings_entry iv[] = {{NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, 100},
                                   {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, WINDOW_MAX},
                                   {NGHTTP2_SETTINGS_MAX_FRAME_SIZE, MAX_FRAME_SIZE}};
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, 3) ||
        nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0, WINDOW_MAX)) {
        azf_session_free(s);
        return AZF_E_NOMEM;
    }
    *out = s;
    return 0;
}

void azf_session_free(azf_session *s)
{
    if (!s)
        return;
    nghttp2_session_del(s->ng); /* no callbacks run from here */
    while (s->streams)
        stream_free(s, s->streams);
    azf__transport_opts_clear(&s->opts);
    azf__free(s);
}

int azf_session_open_stream(azf_session *s, const char *authority, int tls, uint64_t *stream_out)
{
    if (!s || !stream_out)
        return AZF_E_INVALID;
    if (s->role != AZF_ROLE_CLIENT || s->failed || !nghttp2_session_want_read(s->ng))
        return azf__err(&s->err, AZF_E_STATE, "only an open client session opens streams");
    stream *st = stream_new(s);
    if (!st)
        return AZF_E_NOMEM;
    nghttp2_nv nva[] = {NV(":method", "POST"),
                        NV(":scheme", tls ? "https" : "http"),
                        NV(":path", AZF_GRPC_EVENTSTREAM_PATH),
                        NV(":authority", authority ? authority : "localhost"),
                        NV("content-type", "application/grpc"),
                        NV("te", "trailers"),
                        NV("user-agent", "azfunc/" AZF_VERSION_STRING)};
    nghttp2_data_provider prd = {.source = {.ptr = st}, .read_callback = read_cb};
    int32_t id = nghttp2_submit_request(s->ng, NULL, nva, sizeof nva / sizeof nva[0], &prd, st);
    if (id < 0) {
        stream_free(s, st);
        return azf__err(&s->err, id == NGHTTP2_ERR_NOMEM ? AZF_E_NOMEM : AZF_E_STATE,
                        "cannot open a stream: %s", nghttp2_strerror(id));
    }
    st->id = id;
    *stream_out = (uint64_t)id;
    return 0;
}

int azf_session_send(azf_session *s, uint64_t id, azf_buf *msg)
{
    if (!s || !msg || (!msg->ptr && msg->size))
        return AZF_E_INVALID;
    stream *st = find(s, id);
    if (!st)
        return azf__err(&s->err, AZF_E_NOTFOUND, "no open stream %llu", (unsigned long long)id);
    if (st->closing || st->ended || st->fail_status >= 0)
        return azf__err(&s->err, AZF_E_STATE, "stream %llu is closing", (unsigned long long)id);
    out_msg *m = azf__malloc(sizeof *m);
    if (!m)
        return AZF_E_NOMEM;
    if (msg->reserved == 0 && msg->size && azf_buf_grow(msg, msg->size)) {
        azf__free(m);
        return AZF_E_NOMEM;
    }
    int rc = azf_frame_write_header(m->hdr, msg->size);
    if (rc) {
        azf__free(m);
        return azf__err(&s->err, rc, "a message of %zu bytes is too big for gRPC", msg->size);
    }
    m->buf = *msg;
    m->off = 0;
    m->next = NULL;
    *msg = (azf_buf)AZF_BUF_INIT;
    if (st->tail)
        st->tail->next = m;
    else
        st->head = m;
    st->tail = m;
    resume(s, st);
    return 0;
}

int azf_session_close_stream(azf_session *s, uint64_t id, int grpc_status, const char *message)
{
    if (!s)
        return AZF_E_INVALID;
    stream *st = find(s, id);
    if (!st)
        return azf__err(&s->err, AZF_E_NOTFOUND, "no open stream %llu", (unsigned long long)id);
    if (st->closing || st->ended)
        return 0;
    if (s->role == AZF_ROLE_SERVER) {
        st->status = grpc_status;
        if (message && !(st->message = azf__strdup(message)))
            return AZF_E_NOMEM;
    }
    st->closing = 1;
    resume(s, st);
    return 0;
}

int azf_session_reset_stream(azf_session *s, uint64_t id, uint32_t h2_error)
{
    if (!s)
        return AZF_E_INVALID;
    stream *st = find(s, id);
    if (!st)
        return azf__err(&s->err, AZF_E_NOTFOUND, "no open stream %llu", (unsigned long long)id);
    st->local_reset = 1;
    return nghttp2_submit_rst_stream(s->ng, NGHTTP2_FLAG_NONE, st->id, h2_error) ? AZF_E_NOMEM : 0;
}

int azf_session_goaway(azf_session *s, uint32_t h2_error)
{
    if (!s)
        return AZF_E_INVALID;
    s->local_goaway = 1;
    int rv = nghttp2_session_terminate_session2(
        s->ng, nghttp2_session_get_last_proc_stream_id(s->ng), h2_error);
    if (rv)
        return azf__err(&s->err, rv == NGHTTP2_ERR_NOMEM ? AZF_E_NOMEM : AZF_E_STATE,
                        "cannot send GOAWAY: %s", nghttp2_strerror(rv));
    return 0;
}

int azf_session_recv(azf_session *s, const uint8_t *data, size_t len)
{
    if (!s || (!data && len))
        return AZF_E_INVALID;
    if (s->failed)
        return s->failed;
    ssize_t rv = nghttp2_session_mem_recv(s->ng, data, len);
    if (rv < 0) {
        if (s->user_abort) {
            fail(s, AZF_E_USER, "%s", "a callback aborted the session");
        } else if (rv == NGHTTP2_ERR_NOMEM || s->nomem) {
            fail(s, AZF_E_NOMEM, "%s", "out of memory in the HTTP/2 session");
        } else if (rv == NGHTTP2_ERR_BAD_CLIENT_MAGIC) {
            fail(s, AZF_E_PROTOCOL, "%s",
                 "the peer did not send the HTTP/2 connection preface (an HTTP/1.1 or TLS "
                 "client on an h2c port?)");
        } else {
            fail(s, AZF_E_PROTOCOL, "HTTP/2 protocol error: %s",
                 s->ng_err[0] ? s->ng_err : nghttp2_strerror((int)rv));
        }
        return s->failed;
    }
    /* nghttp2 queued a GOAWAY with an error: the bytes were bad. */
    if (!nghttp2_session_want_read(s->ng) && s->ng_err[0] && !s->local_goaway && !s->peer_goaway)
        fail(s, AZF_E_PROTOCOL, "HTTP/2 protocol error: %s", s->ng_err);
    return s->failed == AZF_E_PROTOCOL || s->failed == AZF_E_USER ? s->failed : 0;
}

int azf_session_output(azf_session *s, const uint8_t **data, size_t *len)
{
    if (!s || !data || !len)
        return AZF_E_INVALID;
    ssize_t n = nghttp2_session_mem_send(s->ng, data);
    if (n < 0) {
        *len = 0;
        fail(s, n == NGHTTP2_ERR_NOMEM ? AZF_E_NOMEM : AZF_E_PROTOCOL, "cannot send: %s",
             nghttp2_strerror((int)n));
        return s->failed;
    }
    *len = (size_t)n;
    return 0;
}

int azf_session_want_read(const azf_session *s)
{
    return s && !s->failed && nghttp2_session_want_read(s->ng);
}

int azf__session_busy(const azf_session *s)
{
    for (const stream *st = s->streams; st; st = st->next)
        if (st->head || (st->closing && !st->ended))
            return 1;
    return nghttp2_session_want_write(s->ng);
}

int azf__session_has_streams(const azf_session *s)
{
    return s->streams != NULL;
}

void azf__session_close_all(azf_session *s, int grpc_status)
{
    for (stream *st = s->streams; st; st = st->next)
        azf_session_close_stream(s, (uint64_t)st->id, grpc_status, NULL);
}

void azf__session_abort(azf_session *s, int grpc_status, const char *message)
{
    while (s->streams) {
        stream *st = s->streams;
        nghttp2_session_set_stream_user_data(s->ng, st->id, NULL);
        if (s->cbs.on_stream_close)
            s->cbs.on_stream_close((uint64_t)st->id, grpc_status, message, s->ud);
        stream_free(s, st);
    }
}

int azf_session_want_write(const azf_session *s)
{
    return s && s->failed != AZF_E_NOMEM && nghttp2_session_want_write(s->ng);
}

const char *azf_session_errmsg(const azf_session *s)
{
    return s ? s->err.text : "";
}
