/* `azfunc start`, the local runner (linked into the azfunc executable only: it is the
 * one part of the host layer that needs libevent). */
#ifndef AZF_HOST_RUNNER_H
#define AZF_HOST_RUNNER_H

#include "host/host_internal.h"

typedef struct azf__runner_opts {
    const char *dir;  /* the function app */
    const char *host; /* listen address; default loopback */
    int port;
    /* Limits: -1 takes host.json's value, else the default (docs/local-runner.md). */
    long long max_body;              /* request body, bytes (413 beyond) */
    long long max_header_count;      /* request header fields (431 beyond) */
    long long max_header_bytes;      /* all request header fields, bytes (431 beyond) */
    long long max_request_line;      /* request line, bytes (414 beyond) */
    long long max_connections;       /* open client connections (accept pauses at it) */
    long long read_timeout_ms;       /* a request's arrival, from its first byte */
    long long keep_alive_timeout_ms; /* an idle connection between requests */
    long long function_timeout_ms;   /* an invocation (0: none) */
    int grace_ms;            /* how long SIGINT/SIGTERM waits for running invocations, in total */
    int color;               /* ANSI colours (a terminal) */
    const char *venv;        /* --venv: the app's virtual environment, or NULL */
    const char *python;      /* --python: a version ("3.12") or an interpreter path, or NULL */
    int no_storage_emulator; /* --no-storage-emulator: never start Azurite */
    int listen_fd;           /* a listening socket to serve, or -1: listen on host:port */
} azf__runner_opts;

/* Serves the app until SIGINT/SIGTERM. Returns the process exit code. */
int azf__runner_run(const azf__runner_opts *o);

#endif
