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
    pid_t pid;
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

int azf__emulator_start(azf__emulator **out, const char *state_dir, azf__errmsg *err)
{
    *out = NULL;
    char *data = azf__asprintf("%s/azurite", state_dir);
    char *log = azf__asprintf("%s/azurite.log", state_dir);
    if (!data || !log) {
        azf__free(data), azf__free(log);
        return azf__err(err, AZF_E_NOMEM, "out of memory");
    }
    if ((mkdir(state_dir, 0755) != 0 && errno != EEXIST) ||
        (mkdir(data, 0755) != 0 && errno != EEXIST)) {
        azf__err(err, AZF_E_IO, "cannot create %s: %s", data, strerror(errno));
        azf__free(data), azf__free(log);
        return AZF_E_IO;
    }
    const char *exe = find_azurite();
    int errpipe[2];
    if (pipe2(errpipe, O_CLOEXEC) != 0) {
        azf__free(data), azf__free(log);
        return azf__err(err, AZF_E_IO, "pipe: %s", strerror(errno));
    }
    pid_t pid = fork();
    if (pid == 0) {
        setpgid(0, 0); /* the runner stops it, after its own invocations */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        if (fd >= 0)
            dup2(fd, 1), dup2(fd, 2);
        execlp(exe, exe, "--silent", "--disableTelemetry", "--skipApiVersionCheck", "--location",
               data, "--blobHost", "127.0.0.1", "--queueHost", "127.0.0.1", "--tableHost",
               "127.0.0.1", (char *)NULL);
        int e = errno;
        if (write(errpipe[1], &e, sizeof e) < 0)
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
    /* wait (30 s at most) until all three services listen */
    for (int i = 0; rc == 0 && i < 300; i++) {
        if (listening(ports[0]) && listening(ports[1]) && listening(ports[2]))
            break;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            pid = -1;
            rc = azf__err(err, AZF_E_IO, "Azurite exited at start (see %s)", log);
            break;
        }
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
        if (i == 299)
            rc = azf__err(err, AZF_E_TIMEOUT, "Azurite did not listen within 30 s (see %s)", log);
    }
    azf__free(data), azf__free(log);
    azf__emulator *e = rc == 0 ? azf__calloc(1, sizeof *e) : NULL;
    if (rc == 0 && !e)
        rc = azf__err(err, AZF_E_NOMEM, "out of memory");
    if (rc != 0) {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, NULL, 0);
        }
        return rc;
    }
    e->pid = pid;
    *out = e;
    return 0;
}

void azf__emulator_stop(azf__emulator *e)
{
    if (!e)
        return;
    kill(e->pid, SIGTERM);
    for (int i = 0; i < 100; i++) { /* 10 s to close its files */
        if (waitpid(e->pid, NULL, WNOHANG) == e->pid) {
            azf__free(e);
            return;
        }
        struct timespec ts = {0, 100000000L};
        nanosleep(&ts, NULL);
    }
    kill(e->pid, SIGKILL);
    waitpid(e->pid, NULL, 0);
    azf__free(e);
}
