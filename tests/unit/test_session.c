/* The no-I/O session: our client and server roles paired in memory. */
#include "azf_test.h"
#include "azfunc/transport.h"

#include <stdlib.h>

typedef struct rec {
    int nmsg;
    size_t last_len;
    uint64_t last_stream;
    unsigned long long sum; /* checksum of the last message */
    int first_byte, last_byte;
    char last_text[64];
    int closes;
    int close_status;
    char close_msg[256];
    int errors;
    int error_code;
    char error_msg[256];
} rec;

static int on_message(uint64_t stream, const uint8_t *msg, size_t len, void *ud)
{
    rec *r = ud;
    r->nmsg++;
    r->last_len = len;
    r->last_stream = stream;
    r->sum = 0;
    for (size_t i = 0; i < len; i += 4096)
        r->sum += msg[i];
    r->first_byte = len ? msg[0] : -1;
    r->last_byte = len ? msg[len - 1] : -1;
    snprintf(r->last_text, sizeof r->last_text, "%.*s", (int)(len < 63 ? len : 63),
             (const char *)msg);
    return 0;
}

static void on_close(uint64_t stream, int status, const char *message, void *ud)
{
    (void)stream;
    rec *r = ud;
    r->closes++;
    r->close_status = status;
    snprintf(r->close_msg, sizeof r->close_msg, "%s", message);
}

static void on_error(int code, const char *message, void *ud)
{
    rec *r = ud;
    r->errors++;
    r->error_code = code;
    snprintf(r->error_msg, sizeof r->error_msg, "%s", message);
}

static azf_transport_callbacks *cbs(void)
{
    azf_transport_callbacks *c;
    azf_transport_callbacks_new(&c);
    azf_transport_callbacks_set_on_message(c, on_message);
    azf_transport_callbacks_set_on_stream_close(c, on_close);
    azf_transport_callbacks_set_on_error(c, on_error);
    return c;
}

/* Moves output from one session to the other in chunks of `chunk` bytes. */
static size_t move(azf_session *from, azf_session *to, size_t chunk)
{
    size_t moved = 0;
    const uint8_t *p;
    size_t n;
    while (azf_session_output(from, &p, &n) == 0 && n) {
        for (size_t off = 0; off < n; off += chunk) {
            size_t k = n - off < chunk ? n - off : chunk;
            if (azf_session_recv(to, p + off, k))
                return moved;
        }
        moved += n;
    }
    return moved;
}

static void pump(azf_session *c, azf_session *s, size_t chunk)
{
    while (move(c, s, chunk) + move(s, c, chunk))
        ;
}

typedef struct pair {
    azf_session *cli, *srv;
    rec rc, rs;
    uint64_t stream;
} pair;

static void pair_open(pair *p, size_t cli_max, size_t srv_max)
{
    memset(p, 0, sizeof *p);
    azf_transport_callbacks *cb = cbs();
    azf_transport_opts *oc, *os;
    azf_transport_opts_new(&oc);
    azf_transport_opts_new(&os);
    azf_transport_opts_set_max_message_length(oc, cli_max);
    azf_transport_opts_set_max_message_length(os, srv_max);
    CHECK_INT(azf_session_new(&p->cli, AZF_ROLE_CLIENT, oc, cb, &p->rc), 0);
    CHECK_INT(azf_session_new(&p->srv, AZF_ROLE_SERVER, os, cb, &p->rs), 0);
    azf_transport_opts_free(oc);
    azf_transport_opts_free(os);
    azf_transport_callbacks_free(cb);
    CHECK_INT(azf_session_open_stream(p->cli, "127.0.0.1:1", 0, &p->stream), 0);
}

static void pair_close(pair *p)
{
    azf_session_free(p->cli);
    azf_session_free(p->srv);
}

static int send_text(azf_session *s, uint64_t stream, const char *text)
{
    azf_buf b = AZF_BUF_INIT;
    azf_buf_set(&b, text, strlen(text));
    int rc = azf_session_send(s, stream, &b);
    azf_buf_dispose(&b);
    return rc;
}

static void test_both_ways(size_t chunk)
{
    pair p;
    pair_open(&p, 0, 0);
    CHECK_INT(send_text(p.cli, p.stream, "hello"), 0);
    CHECK_INT(send_text(p.cli, p.stream, ""), 0);
    CHECK_INT(send_text(p.cli, p.stream, "third message"), 0);
    pump(p.cli, p.srv, chunk);
    CHECK_INT(p.rs.nmsg, 3);
    CHECK_STR(p.rs.last_text, "third message");
    CHECK_INT(p.rs.last_stream, p.stream);
    CHECK_INT(send_text(p.srv, p.rs.last_stream, "world"), 0);
    pump(p.cli, p.srv, chunk);
    CHECK_INT(p.rc.nmsg, 1);
    CHECK_STR(p.rc.last_text, "world");
    /* Server ends the call with a status and a message that needs percent-encoding. */
    CHECK_INT(azf_session_close_stream(p.srv, p.stream, 5, "not found: 100% \xc3\xa9t\xc3\xa9"), 0);
    pump(p.cli, p.srv, chunk);
    CHECK_INT(p.rc.closes, 1);
    CHECK_INT(p.rc.close_status, 5);
    CHECK_STR(p.rc.close_msg, "not found: 100% \xc3\xa9t\xc3\xa9");
    CHECK_INT(p.rs.closes, 1);
    CHECK_INT(p.rs.close_status, 5);
    CHECK_INT(p.rc.errors + p.rs.errors, 0);
    CHECK_INT(azf_session_send(p.cli, p.stream, &(azf_buf)AZF_BUF_INIT), AZF_E_NOTFOUND);
    pair_close(&p);
}

static void test_large(void)
{
    size_t n = 100u * 1024 * 1024;
    azf_buf b = AZF_BUF_INIT;
    CHECK_INT(azf_buf_grow(&b, n), 0);
    unsigned long long sum = 0;
    for (size_t i = 0; i < n; i++)
        b.ptr[i] = (char)(i * 7 + 3);
    for (size_t i = 0; i < n; i += 4096)
        sum += (uint8_t)b.ptr[i];
    b.size = n;
    pair p;
    pair_open(&p, 0, 0);
    CHECK_INT(azf_session_send(p.cli, p.stream, &b), 0);
    CHECK(b.ptr == NULL); /* moved into the session */
    pump(p.cli, p.srv, 1u << 20);
    CHECK_INT(p.rs.nmsg, 1);
    CHECK_INT(p.rs.last_len, n);
    CHECK_INT(p.rs.sum, sum);
    CHECK_INT(p.rs.last_byte, (uint8_t)((n - 1) * 7 + 3));
    /* And back: the server streams a 30 MB reply. */
    azf_buf r = AZF_BUF_INIT;
    azf_buf_grow(&r, 30u << 20);
    memset(r.ptr, 'x', 30u << 20);
    r.size = 30u << 20;
    CHECK_INT(azf_session_send(p.srv, p.stream, &r), 0);
    pump(p.cli, p.srv, 65536);
    CHECK_INT(p.rc.nmsg, 1);
    CHECK_INT(p.rc.last_len, 30u << 20);
    pair_close(&p);
}

static void test_over_limit(void)
{
    char big[2000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = 0;
    /* Server limit: the server fails the stream with RESOURCE_EXHAUSTED. */
    pair p;
    pair_open(&p, 0, 1000);
    CHECK_INT(send_text(p.cli, p.stream, "small"), 0);
    CHECK_INT(send_text(p.cli, p.stream, big), 0);
    pump(p.cli, p.srv, 4096);
    CHECK_INT(p.rs.nmsg, 1);
    CHECK_INT(p.rs.closes, 1);
    CHECK_INT(p.rs.close_status, AZF_GRPC_RESOURCE_EXHAUSTED);
    CHECK_INT(p.rc.closes, 1);
    CHECK_INT(p.rc.close_status, AZF_GRPC_RESOURCE_EXHAUSTED);
    CHECK(strstr(p.rc.close_msg, "over the limit") != NULL);
    pair_close(&p);
    /* Client limit: the client resets the stream and reports RESOURCE_EXHAUSTED. */
    pair_open(&p, 1000, 0);
    CHECK_INT(send_text(p.cli, p.stream, "hi"), 0);
    pump(p.cli, p.srv, 4096);
    CHECK_INT(send_text(p.srv, p.stream, big), 0);
    pump(p.cli, p.srv, 4096);
    CHECK_INT(p.rc.nmsg, 0);
    CHECK_INT(p.rc.closes, 1);
    CHECK_INT(p.rc.close_status, AZF_GRPC_RESOURCE_EXHAUSTED);
    CHECK_INT(p.rs.closes, 1);
    CHECK_INT(p.rs.close_status, AZF_GRPC_CANCELLED);
    pair_close(&p);
}

static void test_rst(void)
{
    pair p;
    pair_open(&p, 0, 0);
    CHECK_INT(send_text(p.cli, p.stream, "x"), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(azf_session_reset_stream(p.cli, p.stream, 8 /* CANCEL */), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(p.rc.closes, 1);
    CHECK_INT(p.rc.close_status, AZF_GRPC_CANCELLED);
    CHECK_INT(p.rs.closes, 1);
    CHECK_INT(p.rs.close_status, AZF_GRPC_CANCELLED);
    CHECK(strstr(p.rs.close_msg, "reset by the peer") != NULL);
    pair_close(&p);
    /* Server resets: the client sees the reset. */
    pair_open(&p, 0, 0);
    CHECK_INT(send_text(p.cli, p.stream, "x"), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(azf_session_reset_stream(p.srv, p.stream, 2 /* INTERNAL_ERROR */), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(p.rc.close_status, AZF_GRPC_INTERNAL);
    CHECK(strstr(p.rc.close_msg, "reset by the peer") != NULL);
    pair_close(&p);
}

static void test_goaway(void)
{
    pair p;
    pair_open(&p, 0, 0);
    CHECK_INT(send_text(p.cli, p.stream, "x"), 0);
    pump(p.cli, p.srv, 100);
    /* Graceful GOAWAY: no error; the server session is over once flushed. */
    CHECK_INT(azf_session_goaway(p.srv, 0), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(p.rc.errors, 0);
    CHECK(!azf_session_want_read(p.srv) && !azf_session_want_write(p.srv));
    pair_close(&p);
    /* GOAWAY with an error code: the client reports a protocol error. */
    pair_open(&p, 0, 0);
    CHECK_INT(send_text(p.cli, p.stream, "x"), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(azf_session_goaway(p.srv, 1 /* PROTOCOL_ERROR */), 0);
    pump(p.cli, p.srv, 100);
    CHECK_INT(p.rc.errors, 1);
    CHECK_INT(p.rc.error_code, AZF_E_PROTOCOL);
    CHECK(strstr(p.rc.error_msg, "GOAWAY") != NULL);
    CHECK(!azf_session_want_read(p.cli));
    pair_close(&p);
}

static void test_bad_bytes(void)
{
    rec r = {0};
    azf_transport_callbacks *cb = cbs();
    azf_session *s;
    CHECK_INT(azf_session_new(&s, AZF_ROLE_SERVER, NULL, cb, &r), 0);
    const char *http1 = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(azf_session_recv(s, (const uint8_t *)http1, strlen(http1)), AZF_E_PROTOCOL);
    CHECK(strstr(azf_session_errmsg(s), "preface") != NULL);
    CHECK_INT(r.errors, 1);
    CHECK_INT(azf_session_recv(s, (const uint8_t *)"x", 1), AZF_E_PROTOCOL);
    CHECK(!azf_session_want_read(s));
    azf_session_free(s);

    /* Garbage after a good handshake: the client fails with a clear error. */
    pair p;
    pair_open(&p, 0, 0);
    pump(p.cli, p.srv, 100);
    static const char junk[] = "this is not HTTP/2 at all, just some text";
    /* nghttp2 answers with GOAWAY; the error is reported when that goes out. */
    int rc = azf_session_recv(p.cli, (const uint8_t *)junk, sizeof junk);
    if (rc == 0) {
        move(p.cli, p.srv, 4096);
        rc = azf_session_recv(p.cli, (const uint8_t *)junk, sizeof junk);
    }
    CHECK_INT(rc, AZF_E_PROTOCOL);
    CHECK(!azf_session_want_read(p.cli));
    fprintf(stderr, "garbage: %s\n", azf_session_errmsg(p.cli));
    CHECK(p.rc.errors == 1 && strstr(p.rc.error_msg, "protocol error") != NULL);
    pair_close(&p);

    CHECK_INT(azf_session_new(&s, 7, NULL, NULL, NULL), AZF_E_INVALID);
    azf_transport_callbacks_free(cb);
}

int main(void)
{
    RUN(test_both_ways(1 << 20));
    RUN(test_both_ways(1));
    RUN(test_both_ways(7));
    RUN(test_both_ways(13));
    RUN(test_large());
    RUN(test_over_limit());
    RUN(test_rst());
    RUN(test_goaway());
    RUN(test_bad_bytes());
    TEST_MAIN_END();
}
