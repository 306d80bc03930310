/* `azfunc start`, the local runner (linked into the azfunc executable only: it is the
 * one part of the host layer that needs libevent). */
#ifndef AZF_HOST_RUNNER_H
#define AZF_HOST_RUNNER_H

#include "host/host_internal.h"

typedef struct azf__runner_opts {
    const char *dir;  /* the function app */
    const char *host; /* listen address; default loopback */
    int port;
    size_t max_body;         /* request-body limit in bytes (413 beyond) */
    int grace_ms;            /* how long SIGINT/SIGTERM waits for running invocations */
    int color;               /* ANSI colours (a terminal) */
    const char *venv;        /* --venv: the app's virtual environment, or NULL */
    const char *python;      /* --python: a version ("3.12") or an interpreter path, or NULL */
    int no_storage_emulator; /* --no-storage-emulator: never start Azurite */
} azf__runner_opts;

/* Serves the app until SIGINT/SIGTERM. Returns the process exit code. */
int azf__runner_run(const azf__runner_opts *o);

#endif
