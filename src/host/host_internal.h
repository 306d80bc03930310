/* Internal interfaces of the host layer: app opening with per-function reports, and
 * the settings files of a function app (host.json, local.settings.json). */
#ifndef AZF_HOST_INTERNAL_H
#define AZF_HOST_INTERNAL_H

#include "azfunc/host.h"
#include "common/common_internal.h"

/* Called for each function that cannot run (fn NULL: the whole app failed to index),
 * with the precise error. */
typedef void (*azf__app_report_fn)(const azf_function *fn, const char *error, void *user_data);

/* azf_app_open with a report callback (may be NULL). */
int azf__app_open(azf_app **out, const char *app_dir, azf_python_opts *py_opts,
                  azf__app_report_fn report, void *user_data);

/* azf_app_free, giving Python at most drain_ms to finish what it still runs (the
 * public function gives it 10 s). */
void azf__app_close(azf_app *app, int64_t drain_ms);

/* What azfunc start reads from host.json and local.settings.json. */
typedef struct azf__settings {
    char *route_prefix;     /* extensions.http.routePrefix; default "api" ("" allowed) */
    int log_level;          /* logging.logLevel.default as AZF_LOG_*; 6 = None */
    int function_log_level; /* logging.logLevel.Function (default: log_level) */
    /* The runner's limits from host.json; -1 where not set. Sizes in bytes, times in ms
     * (functionTimeout "-1": none, stored as 0). */
    long long function_timeout_ms;   /* functionTimeout */
    long long max_header_count;      /* extensions.http.maxRequestHeaderCount */
    long long max_header_bytes;      /* extensions.http.maxRequestHeadersTotalSize */
    long long max_request_line;      /* extensions.http.maxRequestLineSize */
    long long max_body;              /* extensions.http.maxRequestBodySize */
    long long max_connections;       /* extensions.http.maxConcurrentConnections */
    long long read_timeout_ms;       /* extensions.http.requestTimeout */
    long long keep_alive_timeout_ms; /* extensions.http.keepAliveTimeout */
    size_t count;                    /* Values then ConnectionStrings as environment entries */
    char **names, **values;
} azf__settings;

void azf__settings_init(azf__settings *s);
void azf__settings_clear(azf__settings *s);
/* Parse one file's text (file names the file in messages). Errors are AZF_E_PARSE with
 * "<file>:<line>:<col>: <what>" for JSON syntax, "<file>: <path>: <what>" for
 * values of the wrong type, and AZF_E_UNSUPPORTED for "IsEncrypted": true. */
int azf__settings_parse_host_json(azf__settings *s, const char *file, const char *text, size_t len,
                                  azf__errmsg *err);
int azf__settings_parse_local(azf__settings *s, const char *file, const char *text, size_t len,
                              azf__errmsg *err);
/* Reads <dir>/host.json and <dir>/local.settings.json; a missing file is not an error
 * (AZF_E_IO for one that exists but cannot be read). */
int azf__settings_load(azf__settings *s, const char *dir, azf__errmsg *err);

#endif
