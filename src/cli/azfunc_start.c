/* `azfunc start [DIR] [--port 7071] [--host 127.0.0.1]`: the local runner. */
#include "host/runner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int azf__cli_start(int argc, char **argv);

static const char usage[] =
    "usage: azfunc start [DIR] [--port PORT] [--host ADDRESS] [--max-body-size BYTES]\n"
    "                    [--grace-period SECONDS] [--python X.Y|PATH] [--venv DIR]\n"
    "                    [--no-storage-emulator]\n"
    "\n"
    "Runs the Python function app in DIR (default: the current directory) locally, as\n"
    "Core Tools' `func start` does: HTTP triggers on http://ADDRESS:PORT/<routePrefix>/...,\n"
    "timers, and POST /admin/functions/<name> {\"input\": \"...\"} for any other function.\n"
    "Reads host.json and local.settings.json. Stops on SIGINT/SIGTERM after the running\n"
    "invocations finish (at most --grace-period seconds, default 10).\n"
    "Queue and blob triggers, and queue, blob and table bindings, run against the storage\n"
    "account of their connection setting; for UseDevelopmentStorage=true it starts Azurite\n"
    "on 127.0.0.1:10000-10002 (data in DIR/.azfunc) unless something listens there or\n"
    "--no-storage-emulator is given.\n"
    "Defaults: port 7071, address 127.0.0.1 (loopback only), body limit 104857600.\n"
    "\n"
    "Which Python runs, first match wins: --python (a version such as 3.12, or an\n"
    "interpreter); the app's venv (--venv, else VIRTUAL_ENV, else .venv/ or venv/ in\n"
    "DIR); FUNCTIONS_WORKER_RUNTIME_VERSION; python3 on PATH. The first lines printed\n"
    "say which Python, venv and libazfunc serve the app.\n";

static int number(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v = s ? strtol(s, &end, 10) : 0;
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
                          .max_body = 100u << 20,
                          .grace_ms = 10000,
                          .color = isatty(STDOUT_FILENO) && !getenv("NO_COLOR")};
    int have_dir = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long n;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            fputs(usage, stdout);
            return 0;
        } else if (strcmp(a, "--port") == 0 && number(v, 0, 65535, &n) == 0) {
            o.port = (int)n, i++;
        } else if (strcmp(a, "--host") == 0 && v) {
            o.host = v, i++;
        } else if (strcmp(a, "--max-body-size") == 0 && number(v, 0, 1L << 40, &n) == 0) {
            o.max_body = (size_t)n, i++;
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
