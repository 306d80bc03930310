/* `azfunc start [DIR] [--port 7071] [--host 127.0.0.1] [limits]`: the local runner. */
#include "host/runner.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int azf__cli_start(int argc, char **argv);

static const char usage[] =
    "usage: azfunc start [DIR] [--port PORT] [--host ADDRESS] [--venv DIR]\n"
    "                    [--grace-period SECONDS] [--function-timeout SECONDS]\n"
    "                    [--max-body-size BYTES] [--max-header-count N]\n"
    "                    [--max-header-size BYTES] [--max-request-line BYTES]\n"
    "                    [--max-connections N] [--request-timeout SECONDS]\n"
    "                    [--keep-alive-timeout SECONDS] [--python X.Y|PATH]\n"
    "                    [--no-storage-emulator]\n"
    "\n"
    "Runs the Python function app in DIR (default: the current directory) locally, as\n"
    "Core Tools' `func start` does: HTTP triggers on http://ADDRESS:PORT/<routePrefix>/...,\n"
    "timers, and POST /admin/functions/<name> {\"input\": \"...\"} for any other function.\n"
    "Reads host.json and local.settings.json; a limit given here wins over host.json's.\n"
    "SIGINT/SIGTERM stops after the running invocations finish (at most --grace-period\n"
    "seconds in total, default 10; exit code 0, or 3 when some did not finish); a second\n"
    "signal stops at once. A crashed or timed-out app process is restarted.\n"
    "Queue and blob triggers, and queue, blob and table bindings, run against the storage\n"
    "account of their connection setting; for UseDevelopmentStorage=true it starts Azurite\n"
    "on 127.0.0.1:10000-10002 (data in DIR/.azfunc) unless something listens there or\n"
    "--no-storage-emulator is given.\n"
    "Defaults: port 7071, address 127.0.0.1 (loopback only); the limits are listed in\n"
    "docs/local-runner.md.\n"
    "\n"
    "Which Python runs, first match wins: --python (a version such as 3.12, or an\n"
    "interpreter); the app's venv (--venv, else VIRTUAL_ENV, else .venv/ or venv/ in\n"
    "DIR); FUNCTIONS_WORKER_RUNTIME_VERSION; python3 on PATH. The first lines printed\n"
    "say which Python, venv and libazfunc serve the app.\n";

static int number(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    long long v = s ? strtoll(s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

int azf__cli_start(int argc, char **argv)
{
    azf__runner_opts o = {.dir = ".",
                          .host = "127.0.0.1",
                          .port = 7071,
                          .max_body = -1,
                          .max_header_count = -1,
                          .max_header_bytes = -1,
                          .max_request_line = -1,
                          .max_connections = -1,
                          .read_timeout_ms = -1,
                          .keep_alive_timeout_ms = -1,
                          .function_timeout_ms = -1,
                          .grace_ms = 10000,
                          .listen_fd = -1,
                          .color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR")};
    static const struct {
        const char *flag;
        size_t off;
        long long lo, hi, scale;
    } limits[] = {
        {"--max-body-size", offsetof(azf__runner_opts, max_body), 0, 1LL << 40, 1},
        {"--max-header-count", offsetof(azf__runner_opts, max_header_count), 1, 1 << 20, 1},
        {"--max-header-size", offsetof(azf__runner_opts, max_header_bytes), 64, 1 << 30, 1},
        {"--max-request-line", offsetof(azf__runner_opts, max_request_line), 16, 1 << 30, 1},
        {"--max-connections", offsetof(azf__runner_opts, max_connections), 1, 1 << 24, 1},
        {"--request-timeout", offsetof(azf__runner_opts, read_timeout_ms), 1, 86400, 1000},
        {"--keep-alive-timeout", offsetof(azf__runner_opts, keep_alive_timeout_ms), 1, 86400, 1000},
        {"--function-timeout", offsetof(azf__runner_opts, function_timeout_ms), 0, 86400 * 7, 1000},
    };
    int have_dir = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long long n;
        size_t k = 0;
        while (k < sizeof limits / sizeof limits[0] && strcmp(a, limits[k].flag) != 0)
            k++;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (k < sizeof limits / sizeof limits[0] &&
                   number(v, limits[k].lo, limits[k].hi, &n) == 0) {
            *(long long *)((char *)&o + limits[k].off) = n * limits[k].scale, i++;
        } else if (strcmp(a, "--port") == 0 && number(v, 0, 65535, &n) == 0) {
            o.port = (int)n, i++;
        } else if (strcmp(a, "--host") == 0 && v) {
            o.host = v, i++;
        } else if (strcmp(a, "--grace-period") == 0 && number(v, 0, 3600, &n) == 0) {
            o.grace_ms = (int)n * 1000, i++;
        } else if (strcmp(a, "--venv") == 0 && v) {
            o.venv = v, i++;
        } else if (strcmp(a, "--python") == 0 && v) {
            o.python = v, i++;
        } else if (strcmp(a, "--no-storage-emulator") == 0) {
            o.no_storage_emulator = 1;
        } else if (a[0] != '-' && !have_dir) {
            o.dir = a, have_dir = 1;
        } else {
            fprintf(stderr, "azfunc start: invalid argument '%s'%s\n%s", a,
                    v && a[0] == '-' ? " (or its value)" : "", usage);
            return 2;
        }
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    return azf__runner_run(&o);
}
