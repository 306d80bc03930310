/* `azfunc start`, the supervisor. The first process owns the listening socket and never
 * runs Python; it forks the app process, which serves HTTP on the inherited socket with
 * the whole runner (so a request never crosses a process boundary). What the supervisor
 * needs to answer for a dead app process it gets out of the request path:
 * - each client connection's socket, passed once per connection over a socketpair
 *   (SCM_RIGHTS) and dropped when the connection closes;
 * - a table in shared memory of the running invocations (function, id, start time,
 *   connection), written by the app process with plain stores.
 * When the app process dies (exit, signal) or an invocation exceeds functionTimeout
 * (the supervisor then kills it), the supervisor says which functions were running
 * and why, answers their requests with 500 (503 for the bystanders of a timeout),
 * closes the other connections and starts a new app process on the same socket,
 * waiting longer after each crash in a row. */
#include "host/runner_internal.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

enum { SLOTS = 4096, MSG_OPEN = 1, MSG_CLOSE, MSG_READY };

typedef struct slot {
    int busy;          /* written last (release) by the app process */
    int conn_fd;       /* the app process's fd of the client connection, or -1 */
    long long started; /* CLOCK_MONOTONIC ms */
    char fn[64], id[37];
} slot;

typedef struct shared {
    long long function_timeout_ms; /* set by the app process once it has read host.json */
    slot slots[SLOTS];
} shared;

typedef struct msg {
    int op, fd;
} msg;

/* The app process's side. */
static shared *table;
static int channel = -1;
static int free_slots[SLOTS], nfree;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void send_msg(int op, int fd, int pass)
{
    msg m = {op, fd};
    struct iovec iov = {&m, sizeof m};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (pass) {
        mh.msg_control = u.buf;
        mh.msg_controllen = sizeof u.buf;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(cm), &fd, sizeof fd);
    }
    if (channel >= 0)
        while (sendmsg(channel, &mh, MSG_NOSIGNAL) < 0 && errno == EINTR)
            ;
}

void azf__supervised_conn(int fd, int open)
{
    send_msg(open ? MSG_OPEN : MSG_CLOSE, fd, open);
}

void azf__supervised_ready(runner *r)
{
    if (table)
        table->function_timeout_ms = r->function_timeout_ms;
    send_msg(MSG_READY, -1, 0);
}

int azf__supervised_begin(const char *fn, const char *id, int conn_fd)
{
    if (!table || nfree == 0)
        return -1;
    int i = free_slots[--nfree];
    slot *s = &table->slots[i];
    snprintf(s->fn, sizeof s->fn, "%s", fn);
    snprintf(s->id, sizeof s->id, "%s", id);
    s->conn_fd = conn_fd;
    s->started = now_ms();
    __atomic_store_n(&s->busy, 1, __ATOMIC_RELEASE);
    return i;
}

void azf__supervised_end(int i)
{
    if (!table || i < 0)
        return;
    __atomic_store_n(&table->slots[i].busy, 0, __ATOMIC_RELEASE);
    free_slots[nfree++] = i;
}

/* ---- the supervisor's side ------------------------------------------------------- */

typedef struct super {
    const azf__runner_opts *o;
    int listen_fd, chan, sigfd;
    int *fds; /* app process fd -> our copy, -1 */
    int nfds;
    pid_t child;
    int served, stopping; /* served: an app process got ready once */
    long long stop_deadline;
} super;

static int listen_on(const char *host, int port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    char p[16];
    snprintf(p, sizeof p, "%d", port);
    if (getaddrinfo(host, p, &hints, &ai) != 0)
        return -1;
    int fd = -1, on = 1;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        /* Non-blocking: the app process's accept loop runs until EAGAIN. */
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
            evutil_make_socket_nonblocking(fd) != 0) {
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    return fd;
}

static void keep_fd(super *s, int child_fd, int fd)
{
    if (child_fd >= s->nfds) {
        int n = s->nfds ? s->nfds : 256;
        while (n <= child_fd)
            n *= 2;
        int *t = realloc(s->fds, (size_t)n * sizeof *t);
        if (!t) {
            close(fd);
            return;
        }
        for (int i = s->nfds; i < n; i++)
            t[i] = -1;
        s->fds = t, s->nfds = n;
    }
    if (s->fds[child_fd] >= 0)
        close(s->fds[child_fd]);
    s->fds[child_fd] = fd;
}

/* Reads what the app process has sent; returns 0 at its end. */
static int read_channel(super *s)
{
    for (;;) {
        msg m;
        struct iovec iov = {&m, sizeof m};
        union {
            char buf[CMSG_SPACE(sizeof(int))];
            struct cmsghdr align;
        } u;
        struct msghdr mh = {
            .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
        ssize_t n = recvmsg(s->chan, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return errno == EAGAIN ? 1 : 0;
        if (n == 0)
            return 0;
        int fd = -1;
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        if (cm && cm->cmsg_type == SCM_RIGHTS)
            memcpy(&fd, CMSG_DATA(cm), sizeof fd);
        if (m.op == MSG_OPEN && fd >= 0 && m.fd >= 0)
            keep_fd(s, m.fd, fd);
        else if (m.op == MSG_CLOSE && m.fd >= 0 && m.fd < s->nfds && s->fds[m.fd] >= 0) {
            close(s->fds[m.fd]);
            s->fds[m.fd] = -1;
        } else if (m.op == MSG_READY) {
            s->served = 1;
        }
        if (fd >= 0 && m.op != MSG_OPEN)
            close(fd);
    }
}

static void answer(int fd, int code)
{
    char buf[160];
    int n = snprintf(buf, sizeof buf,
                     "HTTP/1.1 %d %s\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", code,
                     code == 500 ? "Internal Server Error" : "Service Unavailable");
    ssize_t w = send(fd, buf, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
}

/* The app process is gone: answer the requests of its running invocations, close the
 * other connections. code: 500 for all (a crash), 503 for all (abandoned at shutdown),
 * or 0 after a timeout: 500 for those beyond functionTimeout, 503 for the others. */
static void bury(super *s, const char *why, int code)
{
    long long now = now_ms(), limit = table->function_timeout_ms;
    read_channel(s);
    int running = 0;
    for (int i = 0; i < SLOTS; i++) {
        slot *sl = &table->slots[i];
        if (!__atomic_load_n(&sl->busy, __ATOMIC_ACQUIRE))
            continue;
        running++;
        say(C_RED, "%s while running 'Functions.%s' (Id=%s, for %lld ms)", why, sl->fn, sl->id,
            now - sl->started);
        int fd = sl->conn_fd >= 0 && sl->conn_fd < s->nfds ? s->fds[sl->conn_fd] : -1;
        if (fd >= 0)
            answer(fd, code ? code : now - sl->started > limit ? 500 : 503);
        sl->busy = 0;
    }
    if (!running)
        say(C_RED, "%s (no function was running)", why);
    for (int i = 0; i < s->nfds; i++)
        if (s->fds[i] >= 0) {
            shutdown(s->fds[i], SHUT_RDWR);
            close(s->fds[i]);
            s->fds[i] = -1;
        }
}

static pid_t spawn(super *s, sigset_t *old)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    memset(table, 0, sizeof *table);
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        /* The app process: its own process group (a terminal's Ctrl-C reaches the
         * supervisor, which passes it on once), gone with the supervisor. */
        close(sv[0]);
        close(s->chan);
        close(s->sigfd);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        sigprocmask(SIG_SETMASK, old, NULL);
        channel = sv[1];
        nfree = 0;
        for (int i = SLOTS - 1; i >= 0; i--)
            free_slots[nfree++] = i;
        azf__runner_opts o = *s->o;
        o.listen_fd = s->listen_fd;
        fflush(stdout);
        _exit(azf__runner_serve(&o));
    }
    close(sv[1]);
    if (pid > 0) {
        if (s->chan >= 0)
            close(s->chan);
        s->chan = sv[0];
    } else {
        close(sv[0]);
    }
    return pid;
}

static const char *signame(int sig)
{
    const char *n = sigdescr_np(sig);
    return n ? n : "unknown signal";
}

static int supervise(super *s, sigset_t *old);

int azf__runner_run(const azf__runner_opts *o)
{
    super s_ = {.o = o, .chan = -1}, *s = &s_;
    azf__set_color(o->color);
    if (o->listen_fd >= 0) /* already supervised by a caller */
        return azf__runner_serve(o);
    if ((s->listen_fd = listen_on(o->host, o->port)) < 0) {
        fprintf(stderr, "azfunc start: cannot listen on %s:%d\n", o->host, o->port);
        return 1;
    }
    table = mmap(NULL, sizeof *table, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &old);
    s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (table == MAP_FAILED || s->sigfd < 0 || (s->child = spawn(s, &old)) < 0) {
        fprintf(stderr, "azfunc start: cannot start the app process: %s\n", strerror(errno));
        return 1;
    }
    int code = supervise(s, &old);
    free(s->fds);
    return code;
}

/* Runs the app process until the end; the exit code. */
static int supervise(super *s, sigset_t *old)
{
    const azf__runner_opts *o = s->o;
    int crashes = 0, code = 1;
    long long born = now_ms(), restart_at = -1;
    for (;;) {
        struct pollfd p[2] = {{s->sigfd, POLLIN, 0}, {s->chan, POLLIN, 0}};
        poll(p, s->child > 0 ? 2 : 1, 200);
        if (s->child > 0 && (p[1].revents & POLLIN))
            read_channel(s);
        struct signalfd_siginfo si;
        int died = 0, status = 0;
        while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGCHLD)
                continue;
            if (s->child <= 0) { /* between two app processes */
                say(C_NONE, "Stopped");
                return 0;
            }
            if (!s->stopping) {
                s->stopping = 1;
                /* The app process bounds its own drain; this is the backstop. */
                s->stop_deadline = now_ms() + o->grace_ms + 1000;
            }
            kill(s->child, (int)si.ssi_signo);
        }
        /* What the app process sent before it died is still queued on the channel
         * (READY among it): read it all before deciding whether it ever served. */
        if (s->child > 0 && waitpid(s->child, &status, WNOHANG) == s->child) {
            died = 1;
            read_channel(s);
        }
        long long now = now_ms();
        /* functionTimeout: the host's answer to a function that never returns is to
         * restart the worker; so is ours. */
        long long limit = table->function_timeout_ms;
        int late = 0;
        for (int i = 0; !died && !s->stopping && limit > 0 && i < SLOTS; i++) {
            slot *sl = &table->slots[i];
            if (__atomic_load_n(&sl->busy, __ATOMIC_ACQUIRE) && now - sl->started > limit) {
                say(C_RED, "Timeout value of %lld ms exceeded by function 'Functions.%s' (Id=%s)",
                    limit, sl->fn, sl->id);
                late++;
            }
        }
        if (late) {
            kill(s->child, SIGKILL);
            waitpid(s->child, &status, 0);
            bury(s, "The app process was stopped: functionTimeout exceeded", 0);
            died = 2;
        }
        if (!died && s->stopping && s->child > 0 && now > s->stop_deadline) {
            kill(s->child, SIGKILL);
            waitpid(s->child, &status, 0);
            bury(s, "The app process did not stop within the grace period", 503);
            return AZF__EXIT_ABANDONED;
        }
        if (died == 1) {
            char why[160];
            if (WIFSIGNALED(status))
                snprintf(why, sizeof why, "The app process was killed by signal %d (%s)",
                         WTERMSIG(status), signame(WTERMSIG(status)));
            else
                snprintf(why, sizeof why, "The app process exited with code %d",
                         WEXITSTATUS(status));
            code = WIFEXITED(status) ? WEXITSTATUS(status) : AZF__EXIT_ABANDONED;
            if (!s->served) /* the app never started (it said why): nothing to restart */
                return code ? code : 1;
            if (s->stopping) { /* drained (0), or abandoned (3) or crashed while stopping */
                if (code != 0)
                    bury(s, why, 503);
                return code;
            }
            bury(s, why, 500);
        }
        if (died) {
            s->child = -1;
            crashes = now - born > 60000 ? 1 : crashes + 1;
            long long wait = crashes <= 1 ? 0 : 500LL << (crashes - 2 < 6 ? crashes - 2 : 6);
            if (wait)
                say(C_YELLOW, "Restarting the app process in %lld ms (%d failures in a row)", wait,
                    crashes);
            else
                say(C_YELLOW, "Restarting the app process");
            restart_at = now + wait;
        }
        if (s->child <= 0 && restart_at >= 0 && now_ms() >= restart_at) {
            restart_at = -1;
            born = now_ms();
            if ((s->child = spawn(s, old)) < 0) {
                say(C_RED, "Cannot restart the app process: %s", strerror(errno));
                return 1;
            }
        }
    }
}
