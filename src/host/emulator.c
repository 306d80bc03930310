/* The local storage emulator: Azurite on its usual loopback ports (blob 10000, queue
 * 10001, table 10002), started by `azfunc start` when the app uses development storage
 * and nothing listens there yet, with its data and log under the app's .azfunc/. */
#include "host/bindings.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef AZF_AZURITE_PATH
#define AZF_AZURITE_PATH ""
#endif

static const int ports[3] = {10000, 10001, 10002};

struct azf__emulator {
    pid_t pid; /* -1 once reaped */
};

static int listening(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int azf__emulator_running(void)
{
    return listening(ports[0]) || listening(ports[1]) || listening(ports[2]);
}

/* $AZFUNC_AZURITE, the copy scripts/setup.sh installed in the source tree, or azurite
 * on PATH. */
static const char *find_azurite(void)
{
    const char *env = getenv("AZFUNC_AZURITE");
    if (env && *env)
        return env;
    if (*AZF_AZURITE_PATH && access(AZF_AZURITE_PATH, X_OK) == 0)
        return AZF_AZURITE_PATH;
    return "azurite";
}

int azf__emulator_launch(azf__emulator **out, const char *state_dir, azf__errmsg *err)
{
    *out = NULL;
    char *data = azf__asprintf("%s/azurite", state_dir);
    char *log = azf__asprintf("%s/azurite.log", state_dir);
    azf__emulator *e = azf__calloc(1, sizeof *e);
    if (!data || !log || !e) {
        azf__free(data), azf__free(log), azf__free(e);
        return azf__err(err, AZF_E_NOMEM, "out of memory");
    }
    if ((mkdir(state_dir, 0755) != 0 && errno != EEXIST) ||
        (mkdir(data, 0755) != 0 && errno != EEXIST)) {
        azf__err(err, AZF_E_IO, "cannot create %s: %s", data, strerror(errno));
        azf__free(data), azf__free(log), azf__free(e);
        return AZF_E_IO;
    }
    const char *exe = find_azurite();
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        azf__free(data), azf__free(log), azf__free(e);
        return azf__err(err, AZF_E_IO, "pipe: %s", strerror(errno));
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Its own process group: a terminal's Ctrl-C reaches azfunc start, which stops
         * it after its own invocations. Gone with its parent however that ends (even by
         * SIGKILL); a parent that died before the prctl is caught by getppid. */
        setpgid(0, 0);
        sigset_t none; /* the supervisor blocks SIGTERM and SIGINT (it reads a signalfd) */
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != parent)
            _exit(0);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0)
            dup2(fd, 1), dup2(fd, 2);
        execlp(exe, exe, "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location",
               data, "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost",
               "127.0.0.1", (char *)NULL);
        int en = errno;
        if (write(errpipe[1], &en, sizeof en) < 0)
            _exit(126);
        _exit(127);
    }
    close(errpipe[1]);
    int exec_errno = 0;
    ssize_t got = pid > 0 ? read(errpipe[0], &exec_errno, sizeof exec_errno) : -1;
    close(errpipe[0]);
    int rc = 0;
    if (pid < 0)
        rc = azf__err(err, AZF_E_IO, "fork: %s", strerror(errno));
    else if (got == (ssize_t)sizeof exec_errno)
        rc = azf__err(err, AZF_E_NOTFOUND,
                      "cannot run %s: %s (run scripts/setup.sh, or set AZFUNC_AZURITE)", exe,
                      strerror(exec_errno));
    if (rc != 0) {
        if (pid > 0)
            waitpid(pid, NULL, 0);
        azf__free(data), azf__free(log), azf__free(e);
        return rc;
    }
    azf__free(data), azf__free(log);
    e->pid = pid;
    *out = e;
    return 0;
}

int azf__emulator_await(int pid, const char *state_dir, azf__errmsg *err)
{
    for (int i = 0; i < 300; i++) { /* 30 s at most */
        if (listening(ports[0]) && listening(ports[1]) && listening(ports[2]))
            return 0;
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return azf__err(err, AZF_E_IO, "Azurite exited at start (see %s/azurite.log)",
                            state_dir);
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    return azf__err(err, AZF_E_TIMEOUT, "Azurite did not listen within 30 s (see %s/azurite.log)",
                    state_dir);
}

int azf__emulator_pid(const azf__emulator *e)
{
    return e ? (int)e->pid : -1;
}

int azf__emulator_exited(azf__emulator *e)
{
    return e && waitpid(e->pid, NULL, WNOHANG) == e->pid ? (e->pid = -1, 1) : 0;
}

int azf__emulator_start(azf__emulator **out, const char *state_dir, azf__errmsg *err)
{
    int rc = azf__emulator_launch(out, state_dir, err);
    if (rc == 0 && (rc = azf__emulator_await((int)(*out)->pid, state_dir, err)) != 0) {
        azf__emulator_stop(*out);
        *out = NULL;
    }
    return rc;
}

void azf__emulator_stop(azf__emulator *e)
{
    if (!e)
        return;
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        int gone = 0;
        for (int i = 0; i < 100 && !gone; i++) { /* 10 s to close its files */
            gone = waitpid(e->pid, NULL, WNOHANG) == e->pid;
            struct timespec ts = {0, 100000000L};
            if (!gone)
                nanosleep(&ts, NULL);
        }
        if (!gone) {
            kill(e->pid, SIGKILL);
            waitpid(e->pid, NULL, 0);
        }
    }
    azf__free(e);
}
