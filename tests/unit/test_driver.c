/* The driver over loopback TCP: our client against our server, h2c and TLS. */
#include "azf_test.h"
#include "azfunc/transport.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct side {
    azf_driver *d;
    pthread_t th;
    int rc;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int nmsg;
    size_t bytes;
    int closes, close_status;
    char close_msg[256];
    int errors, error_code;
    char error_msg[256];
    int echo; /* server: echo every message; "bye" closes the stream with OK */
} side;

static int on_message(uint64_t stream, const uint8_t *msg, size_t len, void *ud)
{
    side *s = ud;
    if (s->echo) {
        if (len == 3 && memcmp(msg, "bye", 3) == 0) {
            azf_driver_close_stream(s->d, stream, AZF_GRPC_OK, "done");
        } else {
            azf_buf b = AZF_BUF_INIT;
            azf_buf_set(&b, msg, len);
            azf_driver_send(s->d, stream, &b);
        }
    }
    pthread_mutex_lock(&s->mu);
    s->nmsg++;
    s->bytes += len;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return 0;
}

static void on_close(uint64_t stream, int status, const char *message, void *ud)
{
    (void)stream;
    side *s = ud;
    pthread_mutex_lock(&s->mu);
    s->closes++;
    s->close_status = status;
    snprintf(s->close_msg, sizeof s->close_msg, "%s", message);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void on_error(int code, const char *message, void *ud)
{
    side *s = ud;
    pthread_mutex_lock(&s->mu);
    s->errors++;
    s->error_code = code;
    snprintf(s->error_msg, sizeof s->error_msg, "%s", message);
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *run_thread(void *arg)
{
    side *s = arg;
    s->rc = azf_driver_run(s->d);
    return NULL;
}

static int side_new(side *s, int role, azf_transport_opts *o)
{
    memset(s, 0, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    azf_transport_callbacks *cb;
    azf_transport_callbacks_new(&cb);
    azf_transport_callbacks_set_on_message(cb, on_message);
    azf_transport_callbacks_set_on_stream_close(cb, on_close);
    azf_transport_callbacks_set_on_error(cb, on_error);
    int rc = azf_driver_new(&s->d, role, o, cb, s);
    azf_transport_callbacks_free(cb);
    return rc;
}

static void side_free(side *s)
{
    azf_driver_free(s->d);
    pthread_mutex_destroy(&s->mu);
    pthread_cond_destroy(&s->cv);
}

/* Waits (without a time limit: ctest's timeout catches hangs) for a condition. */
#define WAIT_FOR(s, cond)                                                                          \
    do {                                                                                           \
        pthread_mutex_lock(&(s)->mu);                                                              \
        while (!(cond))                                                                            \
            pthread_cond_wait(&(s)->cv, &(s)->mu);                                                 \
        pthread_mutex_unlock(&(s)->mu);                                                            \
    } while (0)

static int start_server(side *srv, azf_transport_opts *o)
{
    CHECK_INT(side_new(srv, AZF_ROLE_SERVER, o), 0);
    srv->echo = 1;
    CHECK_INT(azf_driver_listen(srv->d, "127.0.0.1", 0), 0);
    CHECK(azf_driver_port(srv->d) > 0);
    pthread_create(&srv->th, NULL, run_thread, srv);
    return azf_driver_port(srv->d);
}

static void stop_server(side *srv)
{
    azf_driver_stop(srv->d);
    pthread_join(srv->th, NULL);
    CHECK_INT(srv->rc, 0);
    side_free(srv);
}

static void send_text(azf_driver *d, uint64_t stream, const char *t)
{
    azf_buf b = AZF_BUF_INIT;
    azf_buf_set(&b, t, strlen(t));
    CHECK_INT(azf_driver_send(d, stream, &b), 0);
}

/* A full call: many messages from another thread, one large one, then "bye". */
static void conversation(const char *uri, azf_transport_opts *co, side *srv)
{
    side cli;
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, co), 0);
    uint64_t stream = 0;
    int rc = azf_driver_connect(cli.d, uri, &stream);
    CHECK_INT(rc, 0);
    if (rc) {
        fprintf(stderr, "connect: %s\n", azf_driver_errmsg(cli.d));
        side_free(&cli);
        return;
    }
    pthread_create(&cli.th, NULL, run_thread, &cli);
    for (int i = 0; i < 200; i++)
        send_text(cli.d, stream, "ping");
    size_t big = 20u << 20;
    azf_buf b = AZF_BUF_INIT;
    azf_buf_grow(&b, big);
    memset(b.ptr, 'z', big);
    b.size = big;
    CHECK_INT(azf_driver_send(cli.d, stream, &b), 0);
    WAIT_FOR(&cli, cli.nmsg == 201);
    CHECK_INT(cli.bytes, 200 * 4 + big);
    send_text(cli.d, stream, "bye");
    pthread_join(cli.th, NULL);
    CHECK_INT(cli.rc, 0);
    CHECK_INT(cli.closes, 1);
    CHECK_INT(cli.close_status, AZF_GRPC_OK);
    CHECK_STR(cli.close_msg, "done");
    CHECK_INT(cli.errors, 0);
    (void)srv;
    side_free(&cli);
}

static void test_h2c(void)
{
    side srv;
    int port = start_server(&srv, NULL);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/", port);
    conversation(uri, NULL, &srv);
    /* A second client on the same server. */
    conversation(uri, NULL, &srv);
    WAIT_FOR(&srv, srv.closes == 2);
    CHECK_INT(srv.close_status, AZF_GRPC_OK);

    /* Garbage instead of HTTP/2: the server reports it and keeps serving. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    CHECK_INT(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    const char *junk = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK(write(fd, junk, strlen(junk)) > 0);
    WAIT_FOR(&srv, srv.errors >= 1);
    CHECK_INT(srv.error_code, AZF_E_PROTOCOL);
    CHECK(strstr(srv.error_msg, "preface") != NULL);
    char tmp[256];
    ssize_t got = read(fd, tmp, sizeof tmp); /* the server closes the connection */
    (void)got;
    close(fd);
    conversation(uri, NULL, &srv);
    stop_server(&srv);
}

typedef struct sender {
    azf_driver *d;
    uint64_t stream;
} sender;

static void *send_many(void *arg)
{
    sender *s = arg;
    for (int i = 0; i < 1000; i++) {
        azf_buf b = AZF_BUF_INIT;
        azf_buf_set(&b, "many", 4);
        if (azf_driver_send(s->d, s->stream, &b))
            azf_buf_dispose(&b);
    }
    return NULL;
}

/* Several threads queue at once; every message arrives and is echoed. */
static void test_many_senders(void)
{
    side srv, cli;
    int port = start_server(&srv, NULL);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/", port);
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, NULL), 0);
    uint64_t stream;
    CHECK_INT(azf_driver_connect(cli.d, uri, &stream), 0);
    pthread_create(&cli.th, NULL, run_thread, &cli);
    sender s = {cli.d, stream};
    pthread_t th[4];
    for (int i = 0; i < 4; i++)
        pthread_create(&th[i], NULL, send_many, &s);
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    WAIT_FOR(&cli, cli.nmsg == 4000);
    WAIT_FOR(&srv, srv.nmsg == 4000); /* read under the server's lock */
    /* A graceful shutdown from another thread ends the client's run. */
    CHECK_INT(azf_driver_shutdown(cli.d, 2000), 0);
    pthread_join(cli.th, NULL);
    CHECK_INT(cli.rc, 0);
    side_free(&cli);
    WAIT_FOR(&srv, srv.closes == 1);
    stop_server(&srv);
}

static void test_connect_errors(void)
{
    /* A port nobody listens on: refused until the (short) deadline. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    bind(fd, (struct sockaddr *)&sa, sizeof sa);
    socklen_t sl = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &sl);
    close(fd);
    char uri[64];
    snprintf(uri, sizeof uri, "http://127.0.0.1:%d/", ntohs(sa.sin_port));
    azf_transport_opts *o;
    azf_transport_opts_new(&o);
    azf_transport_opts_set_connect_timeout_ms(o, 300);
    side cli;
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, o), 0);
    uint64_t stream;
    CHECK_INT(azf_driver_connect(cli.d, uri, &stream), AZF_E_CONNECT);
    CHECK(strstr(azf_driver_errmsg(cli.d), "refused") != NULL);
    side_free(&cli);
    /* A deadline that has passed by the time the refusal is looked at (a 1 ms one,
     * or a busy machine) still reports the refusal, not a timeout. */
    azf_transport_opts_set_connect_timeout_ms(o, 1);
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, o), 0);
    for (int i = 0; i < 200; i++)
        CHECK_INT(azf_driver_connect(cli.d, uri, &stream), AZF_E_CONNECT);
    CHECK_INT(azf_driver_connect(cli.d, "ftp://x/", &stream), AZF_E_INVALID);
    CHECK_INT(azf_driver_connect(cli.d, "http://127.0.0.1:99999/", &stream), AZF_E_INVALID);
    side_free(&cli);
    azf_transport_opts_free(o);
}

static char g_dir[64];

static int sh(const char *cmd)
{
    char full[1024];
    snprintf(full, sizeof full, "cd %s && %s >/dev/null 2>&1", g_dir, cmd);
    return system(full);
}

static int make_certs(void)
{
    snprintf(g_dir, sizeof g_dir, "/tmp/azf-tls-XXXXXX");
    if (!mkdtemp(g_dir))
        return -1;
    const char *ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2";
    char cmd[512];
    snprintf(cmd, sizeof cmd, "openssl req -x509 %s -keyout ca.key -out ca.pem -subj /CN=azf-ca",
             ec);
    if (sh(cmd))
        return -1;
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 %s -keyout other.key -out other.pem -subj /CN=other", ec);
    if (sh(cmd))
        return -1;
    snprintf(cmd, sizeof cmd, "openssl req %s -keyout srv.key -out srv.csr -subj /CN=localhost",
             ec);
    if (sh(cmd))
        return -1;
    if (sh("printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && "
           "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
           "-out srv.pem -days 2 -extfile ext"))
        return -1;
    snprintf(cmd, sizeof cmd, "openssl req %s -keyout cli.key -out cli.csr -subj /CN=worker", ec);
    if (sh(cmd) || sh("openssl x509 -req -in cli.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
                      "-out cli.pem -days 2"))
        return -1;
    return 0;
}

static char *path(const char *name)
{
    static char buf[4][128];
    static int i;
    i = (i + 1) % 4;
    snprintf(buf[i], sizeof buf[i], "%s/%s", g_dir, name);
    return buf[i];
}

static void test_tls(void)
{
    if (make_certs()) {
        fprintf(stderr, "cannot generate certificates with the openssl CLI\n");
        CHECK(0);
        return;
    }
    azf_transport_opts *so, *co;
    azf_transport_opts_new(&so);
    azf_transport_opts_set_tls_cert_file(so, path("srv.pem"));
    azf_transport_opts_set_tls_key_file(so, path("srv.key"));
    side srv;
    int port = start_server(&srv, so);
    char uri[64];
    snprintf(uri, sizeof uri, "https://127.0.0.1:%d/", port);

    /* Trusted CA: a full conversation over TLS. */
    azf_transport_opts_new(&co);
    azf_transport_opts_set_tls_ca_file(co, path("ca.pem"));
    conversation(uri, co, &srv);
    /* By name (SNI + hostname check against DNS:localhost). */
    char uri2[64];
    snprintf(uri2, sizeof uri2, "https://localhost:%d", port);
    conversation(uri2, co, &srv);

    /* Untrusted: refused with a clear error. */
    azf_transport_opts_set_tls_ca_file(co, path("other.pem"));
    side cli;
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, co), 0);
    uint64_t stream;
    CHECK_INT(azf_driver_connect(cli.d, uri, &stream), AZF_E_TLS);
    CHECK(strstr(azf_driver_errmsg(cli.d), "certificate") != NULL);
    fprintf(stderr, "untrusted: %s\n", azf_driver_errmsg(cli.d));
    side_free(&cli);
    WAIT_FOR(&srv, srv.errors >= 1);
    CHECK_INT(srv.error_code, AZF_E_TLS);

    /* Wrong name: refused too. */
    azf_transport_opts_set_tls_ca_file(co, path("ca.pem"));
    azf_transport_opts_set_tls_server_name(co, "example.com");
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, co), 0);
    CHECK_INT(azf_driver_connect(cli.d, uri, &stream), AZF_E_TLS);
    side_free(&cli);

    /* Verification off: the untrusted certificate is accepted. */
    azf_transport_opts_set_tls_server_name(co, NULL);
    azf_transport_opts_set_tls_ca_file(co, path("other.pem"));
    azf_transport_opts_set_tls_verify(co, 0);
    conversation(uri, co, &srv);

    /* h2c client against the TLS port: a clear error, no hang. */
    snprintf(uri2, sizeof uri2, "http://127.0.0.1:%d/", port);
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, NULL), 0);
    CHECK_INT(azf_driver_connect(cli.d, uri2, &stream), 0);
    CHECK(azf_driver_run(cli.d) < 0);
    fprintf(stderr, "h2c on a TLS port: %s\n", azf_driver_errmsg(cli.d));
    side_free(&cli);

    stop_server(&srv);

    /* Mutual TLS: a server with a CA requires a client certificate. */
    azf_transport_opts_set_tls_ca_file(so, path("ca.pem"));
    port = start_server(&srv, so);
    snprintf(uri, sizeof uri, "https://127.0.0.1:%d/", port);
    azf_transport_opts_set_tls_verify(co, 1);
    azf_transport_opts_set_tls_ca_file(co, path("ca.pem"));
    CHECK_INT(side_new(&cli, AZF_ROLE_CLIENT, co), 0);
    int rc = azf_driver_connect(cli.d, uri, &stream);
    if (rc == 0) /* TLS 1.3: the server refuses after the client's handshake is done */
        rc = azf_driver_run(cli.d);
    CHECK(rc < 0);
    side_free(&cli);
    azf_transport_opts_set_tls_cert_file(co, path("cli.pem"));
    azf_transport_opts_set_tls_key_file(co, path("cli.key"));
    conversation(uri, co, &srv);
    stop_server(&srv);

    azf_transport_opts_free(so);
    azf_transport_opts_free(co);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
    CHECK_INT(system(cmd), 0);
}

int main(void)
{
    RUN(test_h2c());
    RUN(test_many_senders());
    RUN(test_connect_errors());
    RUN(test_tls());
    TEST_MAIN_END();
}
