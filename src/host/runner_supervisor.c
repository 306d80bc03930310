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
 * waiting longer after each crash in a row.
 * When the app's files change (runner_watch.c), a new app process is started next to
 * the serving one; once it has indexed and is ready, the old one is told to stop (it
 * drains as for SIGTERM) and the new one takes the connections. A new process that
 * fails to index is dropped and the old one keeps serving. Each app process has its
 * own channel, shared table and connection copies.
 * The storage emulator (Azurite) is started here when an app process asks for it
 * (MSG_EMULATOR), so it lives as long as azfunc start: across crashes and changes, and
 * no longer (stopped at the end; killed with us through PR_SET_PDEATHSIG). */
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
#include <time.h>
#include <unistd.h>

enum { SLOTS = 4096, MSG_OPEN = 1, MSG_CLOSE, MSG_READY, MSG_EMULATOR };

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

/* fd: the connection (MSG_OPEN, MSG_CLOSE); in the reply to MSG_EMULATOR, the outcome
 * (AZF__EMULATOR_*) and Azurite's pid. */
typedef struct msg {
    int op, fd, pid;
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
    msg m = {op, fd, -1};
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

int azf__supervised_emulator(int *pid)
{
    *pid = -1;
    if (channel < 0)
        return AZF__EMULATOR_UNSUPERVISED;
    send_msg(MSG_EMULATOR, -1, 0);
    /* The supervisor answers at once (it does not wait for Azurite to listen). */
    struct pollfd p = {channel, POLLIN, 0};
    msg m;
    if (poll(&p, 1, 60000) != 1 || recv(channel, &m, sizeof m, 0) != (ssize_t)sizeof m ||
        m.op != MSG_EMULATOR)
        return AZF__EMULATOR_FAILED;
    *pid = m.pid;
    return m.fd;
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

/* One app process: the serving one, a new one indexing, or an old one draining. */
typedef struct kid {
    pid_t pid; /* 0: none */
    int chan;
    shared *table;
    int *fds; /* app process fd -> our copy, -1 */
    int nfds;
    int served;         /* it got ready */
    int wants_emulator; /* it asked for the storage emulator */
} kid;

enum { KIDS = 3 };

typedef struct super {
    const azf__runner_opts *o;
    int listen_fd, sigfd;
    kid kids[KIDS];
    int cur, next; /* the serving app process; a new one not yet ready (-1) */
    int stopping;
    int app_served; /* an app process got ready once: the app can start */
    long long stop_deadline;
    azf__emulator *emulator; /* Azurite, started for an app process; lives as long as we do */
    azf__watch *watch;       /* NULL: --no-watch */
} super;

/* A socket listening on host:port, or -1 with errno set (EADDRINUSE: the port is busy). */
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
    int fd = -1, on = 1, err = EADDRNOTAVAIL;
    for (struct addrinfo *a = ai; a && fd < 0; a = a->ai_next) {
        fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
        if (fd < 0)
            continue;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
        /* Non-blocking: the app process's accept loop runs until EAGAIN. */
        if (bind(fd, a->ai_addr, a->ai_addrlen) != 0 || listen(fd, 1024) != 0 ||
            evutil_make_socket_nonblocking(fd) != 0) {
            err = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(ai);
    if (fd < 0)
        errno = err;
    return fd;
}

static void keep_fd(kid *s, int child_fd, int fd)
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
static int read_channel(kid *s)
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
        } else if (m.op == MSG_EMULATOR) {
            s->wants_emulator = 1;
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
static void bury(kid *s, const char *why, int code)
{
    shared *table = s->table;
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

static void close_kid(kid *k)
{
    for (int i = 0; i < k->nfds; i++)
        if (k->fds[i] >= 0) {
            close(k->fds[i]);
            k->fds[i] = -1;
        }
    if (k->chan >= 0)
        close(k->chan);
    k->chan = -1;
    k->pid = 0;
    k->served = k->wants_emulator = 0;
}

/* Starts an app process in a free slot; its index, or -1. reload: it is to replace a
 * serving one, so it must index without error (else it exits before serving). */
static int spawn(super *s, sigset_t *old, int reload)
{
    int i = 0, sv[2];
    while (i < KIDS && s->kids[i].pid > 0)
        i++;
    if (i == KIDS || socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
        return -1;
    kid *k = &s->kids[i];
    memset(k->table, 0, sizeof *k->table);
    fflush(stdout);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* The app process: its own process group (a terminal's Ctrl-C reaches the
         * supervisor, which passes it on once), gone with the supervisor. */
        close(sv[0]);
        for (int j = 0; j < KIDS; j++) /* the other app processes' channels and sockets */
            if (s->kids[j].pid > 0) {
                close(s->kids[j].chan);
                for (int f = 0; f < s->kids[j].nfds; f++)
                    if (s->kids[j].fds[f] >= 0)
                        close(s->kids[j].fds[f]);
            }
        close(s->sigfd);
        azf__watch_close_in_child(s->watch);
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) /* the supervisor died before the prctl: no orphan */
            _exit(1);
        sigprocmask(SIG_SETMASK, old, NULL);
        channel = sv[1];
        table = k->table;
        nfree = 0;
        for (int j = SLOTS - 1; j >= 0; j--)
            free_slots[nfree++] = j;
        azf__runner_opts o = *s->o;
        o.listen_fd = s->listen_fd;
        o.reload = reload;
        fflush(stdout);
        _exit(azf__runner_serve(&o));
    }
    close(sv[1]);
    if (pid < 0) {
        close(sv[0]);
        return -1;
    }
    k->pid = pid;
    k->chan = sv[0];
    k->served = k->wants_emulator = 0;
    return i;
}

static const char *signame(int sig)
{
    const char *n = sigdescr_np(sig);
    return n ? n : "unknown signal";
}

static int supervise(super *s, sigset_t *old);

int azf__runner_run(const azf__runner_opts *o)
{
    /* The port: the flag, else local.settings.json's Host.LocalHttpPort, else 7071 (a
     * settings file with errors is reported by the app process). */
    azf__runner_opts opts = *o;
    if (opts.port < 0) {
        azf__settings st;
        azf__errmsg err = {{0}};
        azf__settings_init(&st);
        azf__settings_load(&st, o->dir, &err);
        opts.port = st.local_http_port >= 0 ? st.local_http_port : 7071;
        azf__settings_clear(&st);
    }
    o = &opts;
    super s_ = {.o = o, .next = -1}, *s = &s_;
    azf__set_color(o->color);
    if (o->listen_fd >= 0) /* already supervised by a caller */
        return azf__runner_serve(o);
    if ((s->listen_fd = listen_on(o->host, o->port)) < 0) {
        if (errno == EADDRINUSE) /* Core Tools' words */
            fprintf(stderr,
                    "azfunc start: Port %d is unavailable. Close the process using that port, "
                    "or specify another port using --port [-p].\n",
                    o->port);
        else
            fprintf(stderr, "azfunc start: cannot listen on %s:%d: %s\n", o->host, o->port,
                    strerror(errno));
        return 1;
    }
    for (int i = 0; i < KIDS; i++) {
        s->kids[i].chan = -1;
        s->kids[i].table =
            mmap(NULL, sizeof(shared), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (s->kids[i].table == MAP_FAILED) {
            fprintf(stderr, "azfunc start: cannot start the app process: %s\n", strerror(errno));
            return 1;
        }
    }
    if (!o->no_watch)
        s->watch = azf__watch_open(o->dir); /* NULL: said why; the app runs unwatched */
    sigset_t mask, old;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGCHLD);
    sigprocmask(SIG_BLOCK, &mask, &old);
    s->sigfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
    if (s->sigfd < 0 || (s->cur = spawn(s, &old, 0)) < 0) {
        fprintf(stderr, "azfunc start: cannot start the app process: %s\n", strerror(errno));
        return 1;
    }
    int code = supervise(s, &old);
    azf__emulator_stop(s->emulator); /* after the app processes: their invocations are done */
    for (int i = 0; i < KIDS; i++)
        free(s->kids[i].fds);
    azf__watch_free(s->watch);
    return code;
}

static void describe_exit(int status, char *why, size_t size)
{
    if (WIFSIGNALED(status))
        snprintf(why, size, "The app process was killed by signal %d (%s)", WTERMSIG(status),
                 signame(WTERMSIG(status)));
    else
        snprintf(why, size, "The app process exited with code %d", WEXITSTATUS(status));
}

/* A change to the app's files: start its new version next to the serving one (a new
 * one still indexing is replaced). */
static void reload(super *s, sigset_t *old)
{
    if (s->next >= 0) {
        kid *n = &s->kids[s->next];
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
        close_kid(n);
        s->next = -1;
    }
    if (s->kids[s->cur].pid <= 0 || !s->kids[s->cur].served) /* (re)starting anyway */
        return;
    say(C_YELLOW, "The app changed: starting it again (the current one serves until then)");
    if ((s->next = spawn(s, old, 1)) < 0)
        say(C_RED, "Cannot start the app process: %s", strerror(errno));
}

/* The new app process is ready: the old one drains (as for SIGTERM, answering the
 * requests already on their way to it: SIGUSR1) and stops. */
static void promote(super *s)
{
    kid *was = &s->kids[s->cur];
    s->cur = s->next;
    s->next = -1;
    if (was->pid > 0)
        kill(was->pid, SIGUSR1);
    say(C_GREEN, "The app's new version is serving");
}

/* An app process asks for the storage emulator: it gets the one we run, or a new one
 * (it waits itself until that listens), or is told that another listens there. Azurite
 * is ours, not the app process's, so it lasts across crashes and changes and stops
 * when azfunc start stops, however that happens. */
static void provide_emulator(super *s, kid *k)
{
    msg m = {MSG_EMULATOR, AZF__EMULATOR_FAILED, -1};
    k->wants_emulator = 0;
    if (s->emulator) {
        m.fd = AZF__EMULATOR_KEPT;
    } else if (azf__emulator_running()) {
        m.fd = AZF__EMULATOR_FOREIGN;
    } else {
        azf__errmsg err = {{0}};
        char *state = azf__asprintf("%s/.azfunc", s->o->dir);
        fflush(stdout);
        if (state && azf__emulator_launch(&s->emulator, state, &err) == 0)
            m.fd = AZF__EMULATOR_STARTED;
        else
            say(C_RED, "Storage: cannot start Azurite: %s", state ? err.text : "out of memory");
        azf__free(state);
    }
    m.pid = azf__emulator_pid(s->emulator);
    ssize_t w = send(k->chan, &m, sizeof m, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)w;
}

/* Runs the app process until the end; the exit code. */
static int supervise(super *s, sigset_t *old)
{
    const azf__runner_opts *o = s->o;
    int crashes = 0, code = 1;
    long long born = now_ms(), restart_at = -1;
    for (;;) {
        struct pollfd p[2 + KIDS];
        int np = 0;
        p[np++] = (struct pollfd){s->sigfd, POLLIN, 0};
        p[np++] = (struct pollfd){s->watch ? azf__watch_fd(s->watch) : -1, POLLIN, 0};
        for (int i = 0; i < KIDS; i++)
            p[np++] = (struct pollfd){s->kids[i].pid > 0 ? s->kids[i].chan : -1, POLLIN, 0};
        long long due = s->watch ? azf__watch_due(s->watch) : -1, wait_ms = 200;
        if (due >= 0 && due - now_ms() < wait_ms)
            wait_ms = due > now_ms() ? due - now_ms() : 0;
        poll(p, (nfds_t)np, (int)wait_ms);
        for (int i = 0; i < KIDS; i++)
            if (s->kids[i].pid > 0 && (p[2 + i].revents & POLLIN))
                read_channel(&s->kids[i]);
        if (s->emulator && azf__emulator_exited(s->emulator)) {
            say(C_RED, "Storage: Azurite has exited (see %s/.azfunc/azurite.log)", o->dir);
            azf__emulator_stop(s->emulator);
            s->emulator = NULL;
        }
        for (int i = 0; i < KIDS; i++)
            if (s->kids[i].pid > 0 && s->kids[i].wants_emulator)
                provide_emulator(s, &s->kids[i]);
        if (s->watch && (p[1].revents & POLLIN))
            azf__watch_read(s->watch, now_ms());
        kid *cur = &s->kids[s->cur];
        struct signalfd_siginfo si;
        int died = 0, status = 0;
        while (read(s->sigfd, &si, sizeof si) == (ssize_t)sizeof si) {
            if (si.ssi_signo == SIGCHLD)
                continue;
            if (cur->pid <= 0) { /* between two app processes */
                say(C_NONE, "Stopped");
                return 0;
            }
            if (!s->stopping) {
                s->stopping = 1;
                /* The app process bounds its own drain; this is the backstop. */
                s->stop_deadline = now_ms() + o->grace_ms + 1000;
            }
            for (int i = 0; i < KIDS; i++)
                if (i != s->cur && s->kids[i].pid > 0)
                    kill(s->kids[i].pid, i == s->next ? SIGKILL : (int)si.ssi_signo);
            kill(cur->pid, (int)si.ssi_signo);
        }
        /* The other app processes: a new one that ends before it is ready (it failed to
         * index: it said why), old ones that have drained. */
        for (int i = 0; i < KIDS; i++) {
            kid *k = &s->kids[i];
            int st = 0;
            if (i == s->cur || k->pid <= 0 || waitpid(k->pid, &st, WNOHANG) != k->pid)
                continue;
            read_channel(k);
            if (i == s->next && k->served && !s->stopping) { /* ready, then died */
                char why[160];
                describe_exit(st, why, sizeof why);
                bury(k, why, 500);
            } else if (i == s->next && !s->stopping) {
                say(C_RED, "The app's new version did not start (above); the previous one "
                           "keeps serving");
            } else if (i != s->next && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
                char why[160];
                describe_exit(st, why, sizeof why);
                bury(k, why, 503);
            }
            if (i == s->next)
                s->next = -1;
            close_kid(k);
        }
        if (s->next >= 0 && s->kids[s->next].served && !s->stopping) {
            promote(s);
            cur = &s->kids[s->cur];
            born = now_ms();
            crashes = 0;
        }
        if (s->watch && !s->stopping && azf__watch_take(s->watch, now_ms()))
            reload(s, old);
        /* What the app process sent before it died is still queued on the channel
         * (READY among it): read it all before deciding whether it ever served. */
        if (cur->pid > 0 && waitpid(cur->pid, &status, WNOHANG) == cur->pid) {
            died = 1;
            read_channel(cur);
        }
        long long now = now_ms();
        /* functionTimeout: the host's answer to a function that never returns is to
         * restart the worker; so is ours. */
        long long limit = cur->table->function_timeout_ms;
        int late = 0;
        for (int i = 0; cur->pid > 0 && !died && !s->stopping && limit > 0 && i < SLOTS; i++) {
            slot *sl = &cur->table->slots[i];
            if (__atomic_load_n(&sl->busy, __ATOMIC_ACQUIRE) && now - sl->started > limit) {
                say(C_RED, "Timeout value of %lld ms exceeded by function 'Functions.%s' (Id=%s)",
                    limit, sl->fn, sl->id);
                late++;
            }
        }
        if (late) {
            kill(cur->pid, SIGKILL);
            waitpid(cur->pid, &status, 0);
            bury(cur, "The app process was stopped: functionTimeout exceeded", 0);
            died = 2;
        }
        if (!died && s->stopping && cur->pid > 0 && now > s->stop_deadline) {
            for (int i = 0; i < KIDS; i++)
                if (s->kids[i].pid > 0) {
                    kill(s->kids[i].pid, SIGKILL);
                    waitpid(s->kids[i].pid, NULL, 0);
                    bury(&s->kids[i], "The app process did not stop within the grace period", 503);
                }
            return AZF__EXIT_ABANDONED;
        }
        if (died == 1) {
            char why[160];
            describe_exit(status, why, sizeof why);
            code = WIFEXITED(status) ? WEXITSTATUS(status) : AZF__EXIT_ABANDONED;
            s->app_served |= cur->served;
            if (!s->app_served) /* the app never started (it said why): nothing to restart */
                return code ? code : 1;
            if (s->stopping) { /* drained (0), or abandoned (3) or crashed while stopping */
                if (code != 0)
                    bury(cur, why, 503);
                /* An old app process still draining has the signal too, and its own
                 * grace period: its requests are answered before we go. */
                for (int i = 0; i < KIDS; i++)
                    if (i != s->cur && s->kids[i].pid > 0)
                        waitpid(s->kids[i].pid, NULL, 0);
                return code;
            }
            bury(cur, why, 500);
        }
        if (died) {
            close_kid(cur);
            crashes = now - born > 60000 ? 1 : crashes + 1;
            long long wait = crashes <= 1 ? 0 : 500LL << (crashes - 2 < 6 ? crashes - 2 : 6);
            if (wait)
                say(C_YELLOW, "Restarting the app process in %lld ms (%d failures in a row)", wait,
                    crashes);
            else
                say(C_YELLOW, "Restarting the app process");
            restart_at = now + wait;
        }
        if (cur->pid <= 0 && restart_at >= 0 && now_ms() >= restart_at) {
            restart_at = -1;
            born = now_ms();
            if ((s->cur = spawn(s, old, 0)) < 0) {
                say(C_RED, "Cannot restart the app process: %s", strerror(errno));
                return 1;
            }
        }
    }
}
