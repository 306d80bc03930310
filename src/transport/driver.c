/* The driver: sockets, TLS (OpenSSL) and an epoll loop around sessions. */
#include "transport_internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK (256 * 1024)
#define WRITE_BATCH (256 * 1024)
#define DIRECT_WRITE (16 * 1024)

typedef struct conn {
    struct conn *next;
    struct azf_driver *d;
    uint32_t id;
    int fd;
    SSL *ssl;
    int handshaking;
    azf_session *sess;
    azf_buf wbuf;
    size_t wpos;
    int epollout;
    int dead;
    int goaway_sent;
    char *why; /* reason for death, reported to open streams */
} conn;

enum { CMD_SEND, CMD_CLOSE };

typedef struct cmd {
    struct cmd *next;
    struct azf_driver *d; /* CMD_SEND: whose queued count holds the message */
    int kind;
    uint64_t stream;
    azf_buf msg;
    int status;
    char *message;
} cmd;

struct azf_driver {
    int role;
    azf_transport_opts opts;
    azf_transport_callbacks cbs;
    void *ud;
    int epfd, evfd, lfd, port;
    SSL_CTX *ctx;
    conn *conns;
    uint32_t next_id;
    uint8_t *rbuf;
    pthread_mutex_t lock;
    cmd *q_head, *q_tail;
    int signaled;
    atomic_int stop;
    atomic_int draining;
    atomic_int running;
    uint64_t drain_deadline;
    uint32_t drain_timeout;
    pthread_t io_thread;
    int client_stream_open;
    int run_rc;
    azf__errmsg err;
    atomic_size_t queued; /* see azf__driver_queued */
    long long poll_ns;    /* see azf__driver_set_poll */
};

static long long mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static uint64_t now_ms(void)
{
    return (uint64_t)mono_ns() / 1000000u;
}

static const char *ssl_errstr(char *buf, size_t n)
{
    unsigned long e = ERR_get_error();
    if (!e)
        snprintf(buf, n, "%s", "no further detail");
    else
        ERR_error_string_n(e, buf, n);
    ERR_clear_error();
    return buf;
}

/* ---- callbacks from the sessions ---------------------------------------- */

static void d_on_error(int code, const char *message, void *ud)
{
    conn *c = ud;
    azf_driver *d = c->d;
    if (d->role == AZF_ROLE_CLIENT && !d->run_rc) {
        d->run_rc = code;
        azf__err(&d->err, code, "%s", message);
    }
    if (d->cbs.on_error)
        d->cbs.on_error(code, message, d->ud);
}

static int d_on_message(uint64_t sid, const uint8_t *msg, size_t len, void *ud)
{
    conn *c = ud;
    return c->d->cbs.on_message
               ? c->d->cbs.on_message(((uint64_t)c->id << 32) | sid, msg, len, c->d->ud)
               : 0;
}

static void d_on_stream_close(uint64_t sid, int status, const char *message, void *ud)
{
    conn *c = ud;
    if (c->d->role == AZF_ROLE_CLIENT)
        c->d->client_stream_open = 0;
    if (c->d->cbs.on_stream_close)
        c->d->cbs.on_stream_close(((uint64_t)c->id << 32) | sid, status, message, c->d->ud);
}

/* ---- connections -------------------------------------------------------- */

static void conn_kill(conn *c, const char *why)
{
    if (c->dead)
        return;
    c->dead = 1;
    c->why = azf__strdup(why);
}

static void set_epollout(conn *c, int on)
{
    if (c->epollout == on || c->dead)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(c->d->epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->epollout = on;
}

size_t azf__driver_queued(const azf_driver *d)
{
    return d ? atomic_load(&((azf_driver *)d)->queued) : 0;
}

static conn *conn_new(azf_driver *d, int fd, SSL *ssl)
{
    conn *c = azf__calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->d = d;
    c->fd = fd;
    c->ssl = ssl;
    c->id = d->role == AZF_ROLE_CLIENT ? 0 : ++d->next_id;
    azf_transport_callbacks cbs = {d_on_message, d_on_stream_close, d_on_error};
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (azf_session_new(&c->sess, d->role, &d->opts, &cbs, c) ||
        epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev)) {
        azf_session_free(c->sess);
        azf__free(c);
        return NULL;
    }
    azf__session_count_queued(c->sess, &d->queued);
    c->next = d->conns;
    d->conns = c;
    return c;
}

static void conn_free(conn *c)
{
    epoll_ctl(c->d->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    if (c->ssl) {
        if (!c->handshaking)
            SSL_shutdown(c->ssl);
        SSL_free(c->ssl);
    }
    close(c->fd);
    azf__session_abort(c->sess, AZF_GRPC_UNAVAILABLE, c->why ? c->why : "connection closed");
    azf_session_free(c->sess);
    azf_buf_dispose(&c->wbuf);
    azf__free(c->why);
    azf__free(c);
}

static conn *conn_find(azf_driver *d, uint64_t stream)
{
    for (conn *c = d->conns; c; c = c->next)
        if (c->id == (uint32_t)(stream >> 32) && !c->dead)
            return c;
    return NULL;
}

static void tls_fail(conn *c, const char *what)
{
    char e[256], m[400];
    long vr = SSL_get_verify_result(c->ssl);
    if (vr != X509_V_OK)
        snprintf(m, sizeof m, "%s: certificate verification failed: %s", what,
                 X509_verify_cert_error_string(vr));
    else
        snprintf(m, sizeof m, "%s: %s", what, ssl_errstr(e, sizeof e));
    d_on_error(AZF_E_TLS, m, c);
    conn_kill(c, m);
}

/* Server side TLS handshake, driven by the loop. */
static void conn_handshake(conn *c)
{
    ERR_clear_error();
    int rv = SSL_do_handshake(c->ssl);
    if (rv == 1) {
        c->handshaking = 0;
        return;
    }
    int e = SSL_get_error(c->ssl, rv);
    if (e == SSL_ERROR_WANT_READ)
        set_epollout(c, 0);
    else if (e == SSL_ERROR_WANT_WRITE)
        set_epollout(c, 1);
    else
        tls_fail(c, "TLS handshake with a client failed");
}

/* Writes up to n bytes: returns the count, 0 when the socket is full (EPOLLOUT is
 * armed), or -1 when the connection failed (it is killed). */
static ssize_t write_some(conn *c, const uint8_t *p, size_t n)
{
    if (c->ssl) {
        ERR_clear_error();
        int rv = SSL_write(c->ssl, p, (int)(n > INT32_MAX ? INT32_MAX : n));
        if (rv > 0)
            return rv;
        int e = SSL_get_error(c->ssl, rv);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            set_epollout(c, 1);
            return 0;
        }
        tls_fail(c, "TLS write failed");
        return -1;
    }
    for (;;) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w >= 0)
            return w;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            set_epollout(c, 1);
            return 0;
        }
        char m[160];
        snprintf(m, sizeof m, "write to the peer failed: %s", strerror(errno));
        conn_kill(c, m);
        return -1;
    }
}

/* Writes pending bytes; returns when everything is written or the socket is full.
 * Small frames are batched into one write; a large chunk with nothing pending is
 * written straight from nghttp2's buffer, and only a remainder is copied. */
static void conn_flush(conn *c)
{
    while (!c->dead && !c->handshaking) {
        if (c->wpos < c->wbuf.size) {
            ssize_t n =
                write_some(c, (const uint8_t *)c->wbuf.ptr + c->wpos, c->wbuf.size - c->wpos);
            if (n <= 0)
                return;
            c->wpos += (size_t)n;
            continue;
        }
        c->wbuf.size = c->wpos = 0;
        while (c->wbuf.size < WRITE_BATCH) {
            const uint8_t *p;
            size_t n;
            if (azf_session_output(c->sess, &p, &n) || !n)
                break;
            if (c->wbuf.size == 0 && n >= DIRECT_WRITE) {
                ssize_t w = write_some(c, p, n);
                if (w < 0)
                    return;
                p += w;
                n -= (size_t)w;
                if (n == 0)
                    continue;
            }
            if (azf_buf_append(&c->wbuf, p, n)) {
                conn_kill(c, "out of memory");
                return;
            }
            if (c->epollout)
                break; /* the socket is full: wait for EPOLLOUT */
        }
        if (c->wbuf.size == 0) {
            set_epollout(c, 0);
            return;
        }
    }
}

static void conn_read(conn *c)
{
    azf_driver *d = c->d;
    while (!c->dead) {
        ssize_t n;
        if (c->ssl) {
            ERR_clear_error();
            int rv = SSL_read(c->ssl, d->rbuf, READ_CHUNK);
            if (rv > 0) {
                n = rv;
            } else {
                int e = SSL_get_error(c->ssl, rv);
                if (e == SSL_ERROR_WANT_READ)
                    return;
                if (e == SSL_ERROR_WANT_WRITE) {
                    set_epollout(c, 1);
                    return;
                }
                if (e == SSL_ERROR_ZERO_RETURN ||
                    (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) {
                    conn_kill(c, "the peer closed the connection");
                    return;
                }
                tls_fail(c, "TLS read failed");
                return;
            }
        } else {
            n = recv(c->fd, d->rbuf, READ_CHUNK, 0);
            if (n < 0) {
                if (errno == EAGAIN || errno == EWOULDBLOCK)
                    return;
                if (errno == EINTR)
                    continue;
                char m[160];
                snprintf(m, sizeof m, "read from the peer failed: %s", strerror(errno));
                d_on_error(AZF_E_IO, m, c);
                conn_kill(c, m);
                return;
            }
            if (n == 0) {
                conn_kill(c, "the peer closed the connection");
                return;
            }
        }
        if (azf_session_recv(c->sess, d->rbuf, (size_t)n)) {
            /* The session reported through on_error; flush its GOAWAY, then close. */
            conn_flush(c);
            conn_kill(c, azf_session_errmsg(c->sess));
            return;
        }
    }
}

/* ---- TLS set-up --------------------------------------------------------- */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg)
{
    (void)ssl;
    (void)arg;
    for (unsigned int i = 0; i < inlen; i += 1u + in[i])
        if (in[i] == 2 && i + 3 <= inlen && memcmp(in + i + 1, "h2", 2) == 0) {
            *out = in + i + 1;
            *outlen = 2;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static int make_ctx(azf_driver *d)
{
    char e[256];
    const azf_transport_opts *o = &d->opts;
    int server = d->role == AZF_ROLE_SERVER;
    if (server && !o->cert_file)
        return 0; /* h2c */
    SSL_CTX *ctx = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    if (!ctx)
        return azf__err(&d->err, AZF_E_TLS, "cannot create a TLS context: %s",
                        ssl_errstr(e, sizeof e));
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    d->ctx = ctx;
    if (o->cert_file && SSL_CTX_use_certificate_chain_file(ctx, o->cert_file) != 1)
        return azf__err(&d->err, AZF_E_TLS, "cannot load the certificate %s: %s", o->cert_file,
                        ssl_errstr(e, sizeof e));
    if (o->cert_file && SSL_CTX_use_PrivateKey_file(ctx, o->key_file ? o->key_file : o->cert_file,
                                                    SSL_FILETYPE_PEM) != 1)
        return azf__err(&d->err, AZF_E_TLS, "cannot load the private key %s: %s",
                        o->key_file ? o->key_file : o->cert_file, ssl_errstr(e, sizeof e));
    if (o->ca_file || o->ca_dir) {
        if (SSL_CTX_load_verify_locations(ctx, o->ca_file, o->ca_dir) != 1)
            return azf__err(&d->err, AZF_E_TLS, "cannot load the CA %s: %s",
                            o->ca_file ? o->ca_file : o->ca_dir, ssl_errstr(e, sizeof e));
    } else if (!server) {
        SSL_CTX_set_default_verify_paths(ctx);
    }
    if (server) {
        SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
        /* With a CA configured, the server requires client certificates (mutual TLS). */
        if ((o->ca_file || o->ca_dir) && o->tls_verify)
            SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    } else {
        SSL_CTX_set_verify(ctx, o->tls_verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
        static const unsigned char alpn[] = "\x02h2";
        SSL_CTX_set_alpn_protos(ctx, alpn, 3);
    }
    return 0;
}

/* ---- public API --------------------------------------------------------- */

int azf_driver_new(azf_driver **out, int role, const azf_transport_opts *opts,
                   const azf_transport_callbacks *cbs, void *user_data)
{
    if (!out || (role != AZF_ROLE_CLIENT && role != AZF_ROLE_SERVER))
        return AZF_E_INVALID;
    azf_driver *d = azf__calloc(1, sizeof *d);
    if (!d)
        return AZF_E_NOMEM;
    d->epfd = d->evfd = d->lfd = -1;
    d->role = role;
    d->ud = user_data;
    if (cbs)
        d->cbs = *cbs;
    pthread_mutex_init(&d->lock, NULL);
    int rc = azf__transport_opts_copy(&d->opts, opts);
    if (!rc) {
        d->epfd = epoll_create1(EPOLL_CLOEXEC);
        d->evfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->evfd};
        if (d->epfd < 0 || d->evfd < 0 || epoll_ctl(d->epfd, EPOLL_CTL_ADD, d->evfd, &ev))
            rc = azf__err(&d->err, AZF_E_IO, "cannot set up epoll: %s", strerror(errno));
    }
    /* A client makes its TLS context at the first https connect (tls_connect): loading
     * the system's CA bundle costs milliseconds an h2c worker never needs. */
    if (!rc && d->role == AZF_ROLE_SERVER)
        rc = make_ctx(d);
    if (rc) {
        azf_driver_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

static void cmd_free(cmd *c)
{
    if (c->kind == CMD_SEND && c->d) /* not taken by a session */
        atomic_fetch_sub(&c->d->queued, c->msg.size);
    azf_buf_dispose(&c->msg);
    azf__free(c->message);
    azf__free(c);
}

void azf_driver_free(azf_driver *d)
{
    if (!d)
        return;
    while (d->conns) {
        conn *c = d->conns;
        d->conns = c->next;
        conn_free(c);
    }
    while (d->q_head) {
        cmd *c = d->q_head;
        d->q_head = c->next;
        cmd_free(c);
    }
    if (d->lfd >= 0)
        close(d->lfd);
    if (d->evfd >= 0)
        close(d->evfd);
    if (d->epfd >= 0)
        close(d->epfd);
    SSL_CTX_free(d->ctx);
    azf__free(d->rbuf);
    azf__transport_opts_clear(&d->opts);
    pthread_mutex_destroy(&d->lock);
    azf__free(d);
}

/* Splits "scheme://host:port/..." into its parts. */
static int parse_uri(const char *uri, int *tls, char *host, size_t hostsz, char *port,
                     size_t portsz)
{
    const char *p;
    if (strncmp(uri, "http://", 7) == 0) {
        *tls = 0;
        p = uri + 7;
    } else if (strncmp(uri, "https://", 8) == 0) {
        *tls = 1;
        p = uri + 8;
    } else {
        return -1;
    }
    const char *hend;
    if (*p == '[') {
        hend = strchr(p, ']');
        if (!hend)
            return -1;
        p++;
    } else {
        hend = p + strcspn(p, ":/");
    }
    size_t hl = (size_t)(hend - p);
    if (hl == 0 || hl >= hostsz)
        return -1;
    memcpy(host, p, hl);
    host[hl] = '\0';
    const char *q = hend + (*hend == ']');
    if (*q == ':') {
        q++;
        size_t pl = strspn(q, "0123456789");
        if (pl == 0 || pl >= portsz || (q[pl] && q[pl] != '/'))
            return -1;
        memcpy(port, q, pl);
        port[pl] = '\0';
        if (atoi(port) < 1 || atoi(port) > 65535)
            return -1;
    } else if (*q == '\0' || *q == '/') {
        snprintf(port, portsz, "%s", *tls ? "443" : "80");
    } else {
        return -1;
    }
    return 0;
}

static int wait_fd(int fd, short events, uint64_t deadline)
{
    for (;;) {
        /* Look at least once, even past the deadline: a loopback refusal is already
         * known, and a late look (a busy machine) must not turn it into a timeout. */
        uint64_t now = now_ms();
        struct pollfd pfd = {.fd = fd, .events = events};
        int n = poll(&pfd, 1, now >= deadline ? 0 : (int)(deadline - now));
        if (n < 0 && errno == EINTR)
            continue;
        return n;
    }
}

/* TCP connect with retries on refusal until the deadline (like a gRPC channel
 * waiting for ready). Returns the fd or a negative error. */
static int tcp_connect(azf_driver *d, const char *host, const char *port, uint64_t deadline)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai)
        return azf__err(&d->err, AZF_E_CONNECT, "cannot resolve %s: %s", host, gai_strerror(gai));
    int last_err = 0, timed_out = 0;
    for (;;) {
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
            int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (fd < 0) {
                last_err = errno;
                continue;
            }
            int rv = connect(fd, ai->ai_addr, ai->ai_addrlen);
            if (rv < 0 && errno == EINPROGRESS) {
                int n = wait_fd(fd, POLLOUT, deadline);
                socklen_t sl = sizeof rv;
                if (n <= 0) {
                    timed_out = 1;
                    rv = -1;
                    errno = ETIMEDOUT;
                } else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &rv, &sl) == 0 && rv) {
                    errno = rv;
                    rv = -1;
                }
            }
            if (rv == 0) {
                int one = 1;
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                freeaddrinfo(res);
                return fd;
            }
            last_err = errno;
            close(fd);
        }
        if (timed_out || now_ms() + 50 >= deadline)
            break;
        struct timespec ts = {0, 50 * 1000000L};
        nanosleep(&ts, NULL);
    }
    freeaddrinfo(res);
    return azf__err(&d->err, timed_out ? AZF_E_TIMEOUT : AZF_E_CONNECT,
                    "cannot connect to %s:%s within %u ms: %s", host, port,
                    d->opts.connect_timeout_ms, strerror(last_err ? last_err : ETIMEDOUT));
}

static int tls_connect(azf_driver *d, int fd, const char *host, uint64_t deadline, SSL **out)
{
    char e[256];
    if (!d->ctx) {
        int rc = make_ctx(d);
        if (rc)
            return rc;
    }
    SSL *ssl = SSL_new(d->ctx);
    if (!ssl)
        return azf__err(&d->err, AZF_E_NOMEM, "cannot create a TLS connection");
    SSL_set_fd(ssl, fd);
    const char *name = d->opts.server_name ? d->opts.server_name : host;
    unsigned char ipbuf[16];
    int is_ip = inet_pton(AF_INET, name, ipbuf) == 1 || inet_pton(AF_INET6, name, ipbuf) == 1;
    if (!is_ip)
        SSL_set_tlsext_host_name(ssl, name);
    if (d->opts.tls_verify) {
        if (is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name);
        else
            SSL_set1_host(ssl, name);
    }
    for (;;) {
        ERR_clear_error();
        int rv = SSL_connect(ssl);
        if (rv == 1)
            break;
        int err = SSL_get_error(ssl, rv);
        short ev = err == SSL_ERROR_WANT_READ ? POLLIN : err == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        int rc = 0;
        if (ev && wait_fd(fd, ev, deadline) <= 0)
            rc = azf__err(&d->err, AZF_E_TIMEOUT,
                          "TLS handshake with %s did not finish within %u ms", host,
                          d->opts.connect_timeout_ms);
        else if (!ev) {
            long vr = SSL_get_verify_result(ssl);
            if (vr != X509_V_OK)
                rc = azf__err(&d->err, AZF_E_TLS,
                              "TLS handshake with %s failed: certificate verification failed: %s",
                              host, X509_verify_cert_error_string(vr));
            else
                rc = azf__err(&d->err, AZF_E_TLS, "TLS handshake with %s failed: %s", host,
                              ssl_errstr(e, sizeof e));
        }
        if (rc) {
            SSL_free(ssl);
            return rc;
        }
    }
    const unsigned char *alpn = NULL;
    unsigned int alen = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alen);
    if (alen != 2 || memcmp(alpn, "h2", 2) != 0) {
        SSL_free(ssl);
        return azf__err(&d->err, AZF_E_TLS, "the server %s did not select HTTP/2 (ALPN h2)", host);
    }
    *out = ssl;
    return 0;
}

int azf_driver_connect(azf_driver *d, const char *uri, uint64_t *stream)
{
    if (!d || !uri || !stream)
        return AZF_E_INVALID;
    if (d->role != AZF_ROLE_CLIENT || d->conns)
        return azf__err(&d->err, AZF_E_STATE, "connect needs a client driver without a connection");
    int tls;
    char host[256], port[8], authority[300];
    if (parse_uri(uri, &tls, host, sizeof host, port, sizeof port))
        return azf__err(&d->err, AZF_E_INVALID,
                        "bad URI '%s': expected http://host:port/ or https://host:port/", uri);
    uint64_t deadline = now_ms() + d->opts.connect_timeout_ms;
    int fd = tcp_connect(d, host, port, deadline);
    if (fd < 0)
        return fd;
    SSL *ssl = NULL;
    int rc = tls ? tls_connect(d, fd, host, deadline, &ssl) : 0;
    if (rc) {
        close(fd);
        return rc;
    }
    conn *c = conn_new(d, fd, ssl);
    if (!c) {
        SSL_free(ssl);
        close(fd);
        return azf__err(&d->err, AZF_E_NOMEM, "out of memory");
    }
    snprintf(authority, sizeof authority, strchr(host, ':') ? "[%s]:%s" : "%s:%s", host, port);
    rc = azf_session_open_stream(c->sess, authority, tls, stream);
    if (rc)
        return azf__err(&d->err, rc, "%s", azf_session_errmsg(c->sess));
    d->client_stream_open = 1;
    conn_flush(c);
    return 0;
}

int azf_driver_listen(azf_driver *d, const char *host, uint16_t port)
{
    if (!d)
        return AZF_E_INVALID;
    if (d->role != AZF_ROLE_SERVER || d->lfd >= 0)
        return azf__err(&d->err, AZF_E_STATE, "listen needs a server driver not yet listening");
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV},
                    *res;
    char ps[8];
    snprintf(ps, sizeof ps, "%u", port);
    int gai = getaddrinfo(host ? host : "127.0.0.1", ps, &hints, &res);
    if (gai)
        return azf__err(&d->err, AZF_E_INVALID, "cannot resolve %s: %s", host, gai_strerror(gai));
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;
    if (fd >= 0)
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || bind(fd, res->ai_addr, res->ai_addrlen) || listen(fd, 64)) {
        int e = errno;
        freeaddrinfo(res);
        if (fd >= 0)
            close(fd);
        return azf__err(&d->err, AZF_E_IO, "cannot listen on %s:%u: %s", host ? host : "127.0.0.1",
                        port, strerror(e));
    }
    freeaddrinfo(res);
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    getsockname(fd, (struct sockaddr *)&ss, &sl);
    d->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->lfd};
    epoll_ctl(d->epfd, EPOLL_CTL_ADD, fd, &ev);
    d->lfd = fd;
    return 0;
}

int azf_driver_port(const azf_driver *d)
{
    return d ? d->port : 0;
}

static void accept_all(azf_driver *d)
{
    for (;;) {
        int fd = accept4(d->lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
            return;
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        SSL *ssl = NULL;
        if (d->ctx) {
            ssl = SSL_new(d->ctx);
            if (!ssl) {
                close(fd);
                continue;
            }
            SSL_set_fd(ssl, fd);
            SSL_set_accept_state(ssl);
        }
        conn *c = conn_new(d, fd, ssl);
        if (!c) {
            SSL_free(ssl);
            close(fd);
            continue;
        }
        c->handshaking = ssl != NULL;
        if (c->handshaking)
            conn_handshake(c);
    }
}

static void apply(azf_driver *d, cmd *k)
{
    conn *c = conn_find(d, k->stream);
    uint64_t sid = k->stream & 0xffffffffu;
    if (!c)
        return;
    if (k->kind == CMD_SEND)
        azf_session_send(c->sess, sid, &k->msg);
    else
        azf_session_close_stream(c->sess, sid, k->status, k->message);
}

static int on_io_thread(azf_driver *d)
{
    return atomic_load(&d->running) && pthread_equal(pthread_self(), d->io_thread);
}

static int enqueue(azf_driver *d, cmd *k)
{
    if (on_io_thread(d)) {
        apply(d, k);
        cmd_free(k);
        return 0;
    }
    pthread_mutex_lock(&d->lock);
    if (d->q_tail)
        d->q_tail->next = k;
    else
        d->q_head = k;
    d->q_tail = k;
    int wake = !d->signaled;
    d->signaled = 1;
    pthread_mutex_unlock(&d->lock);
    if (wake) {
        uint64_t one = 1;
        ssize_t n = write(d->evfd, &one, sizeof one);
        (void)n;
    }
    return 0;
}

static void wake(azf_driver *d)
{
    uint64_t one = 1;
    ssize_t n = write(d->evfd, &one, sizeof one);
    (void)n;
}

static void drain_cmds(azf_driver *d)
{
    uint64_t v;
    ssize_t n = read(d->evfd, &v, sizeof v);
    (void)n;
    pthread_mutex_lock(&d->lock);
    cmd *k = d->q_head;
    d->q_head = d->q_tail = NULL;
    d->signaled = 0;
    pthread_mutex_unlock(&d->lock);
    while (k) {
        cmd *next = k->next;
        apply(d, k);
        cmd_free(k);
        k = next;
    }
}

int azf_driver_send(azf_driver *d, uint64_t stream, azf_buf *msg)
{
    if (!d || !msg || (!msg->ptr && msg->size))
        return AZF_E_INVALID;
    cmd *k = azf__calloc(1, sizeof *k);
    if (!k)
        return AZF_E_NOMEM;
    if (msg->reserved == 0 && msg->size && azf_buf_grow(msg, msg->size)) {
        azf__free(k);
        return AZF_E_NOMEM;
    }
    k->kind = CMD_SEND;
    k->d = d;
    k->stream = stream;
    k->msg = *msg;
    atomic_fetch_add(&d->queued, msg->size);
    *msg = (azf_buf)AZF_BUF_INIT;
    return enqueue(d, k);
}

int azf_driver_close_stream(azf_driver *d, uint64_t stream, int grpc_status, const char *message)
{
    if (!d)
        return AZF_E_INVALID;
    cmd *k = azf__calloc(1, sizeof *k);
    if (!k || (message && !(k->message = azf__strdup(message)))) {
        azf__free(k);
        return AZF_E_NOMEM;
    }
    k->kind = CMD_CLOSE;
    k->stream = stream;
    k->status = grpc_status;
    return enqueue(d, k);
}

int azf_driver_shutdown(azf_driver *d, uint32_t timeout_ms)
{
    if (!d)
        return AZF_E_INVALID;
    pthread_mutex_lock(&d->lock);
    d->drain_timeout = timeout_ms;
    pthread_mutex_unlock(&d->lock);
    atomic_store(&d->draining, 1);
    wake(d);
    return 0;
}

int azf_driver_stop(azf_driver *d)
{
    if (!d)
        return AZF_E_INVALID;
    atomic_store(&d->stop, 1);
    wake(d);
    return 0;
}

const char *azf_driver_errmsg(const azf_driver *d)
{
    return d ? d->err.text : "";
}

/* Graceful end: close streams, and once everything is flushed send GOAWAY.
 * Returns 1 when every connection is done. */
static int drain_step(azf_driver *d)
{
    int busy = 0;
    for (conn *c = d->conns; c; c = c->next) {
        if (c->dead)
            continue;
        if (!c->goaway_sent) {
            /* A client also waits for the server to finish the call (its trailers):
             * a gRPC server that sees the connection go first may drop replies it has
             * received but not yet read. The drain deadline bounds the wait. */
            if (azf__session_busy(c->sess) || c->wpos < c->wbuf.size ||
                (d->role == AZF_ROLE_CLIENT && d->client_stream_open)) {
                busy = 1;
                continue;
            }
            azf_session_goaway(c->sess, 0);
            c->goaway_sent = 1;
            conn_flush(c);
        }
        if (c->wpos < c->wbuf.size || azf_session_want_write(c->sess))
            busy = 1;
    }
    return !busy;
}

static void start_drain(azf_driver *d)
{
    pthread_mutex_lock(&d->lock);
    d->drain_deadline = now_ms() + d->drain_timeout;
    pthread_mutex_unlock(&d->lock);
    for (conn *c = d->conns; c; c = c->next)
        azf__session_close_all(c->sess, AZF_GRPC_OK);
}

void azf__driver_set_poll(azf_driver *d, uint32_t poll_us)
{
    d->poll_ns = (long long)poll_us * 1000;
}

/* epoll_wait that polls for up to poll_ns before it blocks without a deadline:
 * at one request in flight, a worker's next request (or its function's response
 * to send) comes within that time, and finds the I/O thread awake. It yields
 * between polls: it keeps this core out of its idle state, whose wake-up is the
 * larger part of a small request's round trip in a VM, without taking the core
 * from anyone who wants it. */
static int wait_events(azf_driver *d, struct epoll_event *evs, int max, int timeout)
{
    if (d->poll_ns > 0 && timeout < 0) {
        long long until = mono_ns() + d->poll_ns;
        do {
            int n = epoll_wait(d->epfd, evs, max, 0);
            if (n)
                return n;
            sched_yield();
        } while (mono_ns() < until);
    }
    return epoll_wait(d->epfd, evs, max, timeout);
}

int azf_driver_run(azf_driver *d)
{
    if (!d)
        return AZF_E_INVALID;
    /* The read buffer exists only while there is something to read. */
    if (!d->rbuf && !(d->rbuf = azf__malloc(READ_CHUNK)))
        return azf__err(&d->err, AZF_E_NOMEM, "out of memory");
    d->io_thread = pthread_self();
    atomic_store(&d->running, 1);
    d->run_rc = 0;
    int drain_started = 0;
    drain_cmds(d);
    struct epoll_event evs[64];
    while (!atomic_load(&d->stop)) {
        /* Flush, reap dead connections, decide whether to go on. */
        for (conn *c = d->conns; c; c = c->next)
            conn_flush(c);
        for (conn **pc = &d->conns; *pc;) {
            conn *c = *pc;
            if (!c->dead && !azf_session_want_read(c->sess) && !azf_session_want_write(c->sess) &&
                c->wpos >= c->wbuf.size)
                conn_kill(c, "the connection ended");
            if (c->dead) {
                *pc = c->next;
                if (d->role == AZF_ROLE_CLIENT && d->client_stream_open && !d->run_rc) {
                    d->run_rc = AZF_E_CLOSED;
                    azf__err(&d->err, AZF_E_CLOSED,
                             "the connection closed with the stream open: %s",
                             c->why ? c->why : "closed");
                }
                conn_free(c);
                continue;
            }
            pc = &c->next;
        }
        if (d->role == AZF_ROLE_CLIENT) {
            if (!d->conns)
                break;
            /* The call is over: end the connection politely. */
            if (!d->client_stream_open && !d->conns->goaway_sent) {
                azf_session_goaway(d->conns->sess, 0);
                d->conns->goaway_sent = 1;
                continue;
            }
        }
        int timeout = -1;
        if (atomic_load(&d->draining)) {
            if (!drain_started) {
                drain_started = 1;
                start_drain(d);
            }
            if (drain_step(d))
                break;
            uint64_t now = now_ms();
            if (now >= d->drain_deadline)
                break;
            timeout = (int)(d->drain_deadline - now);
        }
        int n = wait_events(d, evs, 64, timeout);
        if (n < 0 && errno != EINTR) {
            d->run_rc = azf__err(&d->err, AZF_E_IO, "epoll_wait failed: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (p == &d->evfd) {
                drain_cmds(d);
            } else if (p == &d->lfd) {
                accept_all(d);
            } else {
                conn *c = p;
                if (c->handshaking) {
                    conn_handshake(c);
                    if (c->handshaking)
                        continue;
                }
                if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
                    conn_read(c);
                if (evs[i].events & EPOLLOUT)
                    conn_flush(c);
            }
        }
    }
    atomic_store(&d->running, 0);
    return d->run_rc;
}
