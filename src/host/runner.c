/* `azfunc start`: the local runner. One libevent loop thread owns the HTTP server
 * (runner_http.c, runner_route.c), the timers (runner_timer.c) and the signals
 * (runner_shutdown.c); invocations (runner_invoke.c) run on their handlers' threads.
 * This file sets it up, runs the loop and writes the output. */
#include "host/runner_internal.h"

#include <event2/thread.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ---- output -------------------------------------------------------------------- */

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int out_color;

/* One line, "[<UTC time>Z] <message>", in colour when enabled, flushed at once (so
 * nothing is lost if the process dies). The request path prints three lines per
 * invocation, so the time's text is made once a second, not per line. out_mu held. */
static void put_line(int color, const char *msg, size_t len)
{
    static const char *const codes[] = {"",         "\033[31m", "\033[32m",
                                        "\033[33m", "\033[36m", "\033[90m"};
    static time_t stamp_sec = -1;
    static char stamp[40];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (ts.tv_sec != stamp_sec) {
        struct tm tm;
        gmtime_r(&ts.tv_sec, &tm);
        strftime(stamp, sizeof stamp, "[%Y-%m-%dT%H:%M:%S.", &tm);
        stamp_sec = ts.tv_sec;
    }
    int ms = (int)(ts.tv_nsec / 1000000);
    char millis[6] = {
        (char)('0' + ms / 100), (char)('0' + ms / 10 % 10), (char)('0' + ms % 10), 'Z', ']', ' '};
    const char *on = out_color && color ? codes[color] : "", *off = *on ? "\033[0m" : "";
    fputs(stamp, stdout);
    fwrite(millis, 1, sizeof millis, stdout);
    fputs(on, stdout);
    fwrite(msg, 1, len, stdout);
    fputs(off, stdout);
    putchar('\n');
    fflush(stdout);
}

void azf__say(int color, const char *fmt, ...)
{
    char small[512], *msg = small;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n >= (int)sizeof small && (msg = malloc((size_t)n + 1))) {
        va_start(ap, fmt);
        vsnprintf(msg, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (!msg) /* out of memory: the start of it */
        msg = small, n = (int)sizeof small - 1;
    pthread_mutex_lock(&out_mu);
    put_line(color, msg, n > 0 ? (size_t)n : 0);
    pthread_mutex_unlock(&out_mu);
    if (msg != small)
        free(msg);
}

/* azf__say(color, "%s", text), without the formatting. */
static void say_text(int color, const char *text)
{
    pthread_mutex_lock(&out_mu);
    put_line(color, text, strlen(text));
    pthread_mutex_unlock(&out_mu);
}

void azf__set_color(int on)
{
    out_color = on;
}

static int level_color(int level)
{
    return level >= AZF_LOG_ERROR ? C_RED : level == AZF_LOG_WARNING ? C_YELLOW : C_NONE;
}

void azf__on_python_log(int level, const char *category, const char *message, void *user_data)
{
    const runner *r = user_data;
    (void)category;
    if (level >= r->settings.log_level)
        say_text(level_color(level), message);
}

void azf__on_user_log(azf_invocation *inv, int level, const char *category, const char *message,
                      void *user_data)
{
    const runner *r = ((call *)user_data)->r;
    (void)inv, (void)category;
    int min = r->settings.function_log_level >= 0 ? r->settings.function_log_level
                                                  : r->settings.log_level;
    if (level >= min)
        say_text(level_color(level), message);
}

static int index_failed; /* the app's indexing raised */

static void on_report(const azf_function *fn, const char *error, void *user_data)
{
    (void)user_data;
    if (fn)
        say(C_RED, "Function '%s' cannot run: %s", azf_function_name(fn), error);
    else
        say(C_RED, "The function app failed to index: %s", error);
    index_failed |= !fn;
}

/* The host name in printed URLs: localhost for loopback and any-address listeners, as
 * Core Tools prints them. */
static const char *url_host(const char *host, char *buf, size_t size)
{
    static const char *const local[] = {"127.0.0.1", "::1", "localhost", "0.0.0.0", "::", ""};
    for (size_t i = 0; i < sizeof local / sizeof local[0]; i++)
        if (strcmp(host, local[i]) == 0)
            return "localhost";
    snprintf(buf, size, strchr(host, ':') ? "[%s]" : "%s", host);
    return buf;
}

/* --functions: the host's filter, passed as Core Tools passes it (app.c applies it). */
static void set_function_filter(const azf__runner_opts *o)
{
    char var[64];
    for (int i = 0; i < o->n_functions; i++) {
        snprintf(var, sizeof var, "AzureFunctionsJobHost__functions__%d", i);
        setenv(var, o->functions[i], 1);
    }
}

static void warn_unknown_functions(runner *r)
{
    for (int i = 0; i < r->o->n_functions; i++)
        if (!azf_app_find(r->app, r->o->functions[i]))
            say(C_YELLOW, "Function '%s' given to --functions is not in the app",
                r->o->functions[i]);
}

static void print_functions(runner *r)
{
    char hbuf[300];
    const char *host = url_host(r->o->host, hbuf, sizeof hbuf);
    const char *prefix = r->settings.route_prefix ? r->settings.route_prefix : "api";
    size_t n = azf_app_function_count(r->app);
    pthread_mutex_lock(&out_mu);
    printf("\n%sFunctions:%s\n\n", out_color ? "\033[33m" : "", out_color ? "\033[0m" : "");
    for (size_t i = 0; i < n; i++) {
        const azf_function *fn = azf_app_function_at(r->app, i);
        const azf_binding *trig = azf_function_trigger(fn);
        printf("\t%s%s:%s ", out_color ? "\033[33m" : "", azf_function_name(fn),
               out_color ? "\033[0m" : "");
        if (azf_function_load_error(fn)) {
            printf("%s(cannot run: %s)%s\n\n", out_color ? "\033[31m" : "",
                   azf_function_load_error(fn), out_color ? "\033[0m" : "");
            continue;
        }
        if (azf__is_http(fn)) {
            size_t m = azf_function_method_count(fn);
            printf("[");
            for (size_t j = 0; j < m; j++)
                printf("%s%s", j ? "," : "", azf_function_method(fn, j));
            printf("%s] %shttp://%s:%d/%s%s%s%s\n\n",
                   m ? "" : "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS", out_color ? "\033[32m" : "",
                   host, r->o->port, prefix, *prefix ? "/" : "", azf_function_route(fn),
                   out_color ? "\033[0m" : "");
        } else {
            printf("%s%s\n\n", trig ? azf_binding_type(trig) : "(no trigger)",
                   azf_function_is_disabled(fn) ? " (disabled)" : "");
        }
    }
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
}

/* Puts local.settings.json's values into the environment (not over variables that are
 * already set, as Core Tools does) before Python imports the app. */
static void apply_settings(const azf__settings *s)
{
    for (size_t i = 0; i < s->count; i++) {
        if (getenv(s->names[i]))
            say(C_YELLOW,
                "Skipping '%s' from local settings as it's already defined in current "
                "environment variables.",
                s->names[i]);
        else
            setenv(s->names[i], s->values[i], 1);
    }
}

/* What a worker does at init (azf_python_init_app): telemetry from the settings and, for
 * an app that imports an HTTP extension, its own HTTP server, which HTTP functions are
 * then proxied to (runner_stream.c). */
static int start_app_server(runner *r)
{
    azf_value_map *caps = NULL;
    azf_python *py = azf_app_python(r->app);
    int rc = py ? azf_value_map_new(&caps) : 0;
    if (py && rc == 0)
        rc = azf_python_init_app(py, r->o->dir, "127.0.0.1", caps);
    if (rc != 0) {
        const azf_python_error *e = py ? azf_python_last_error(py) : NULL;
        fprintf(stderr, "azfunc start: %s\n",
                e    ? azf_python_error_message(e)
                : py ? azf_python_errmsg(py)
                     : azf_strerror(rc));
    }
    const azf_value *uri = rc == 0 ? azf_value_map_get(caps, "HttpUri") : NULL;
    if (uri) {
        rc = azf__stream_set_uri(r, azf_value_data(uri, NULL));
        if (rc == 0)
            say(C_NONE, "HTTP streaming: HTTP functions are served by the app at %s",
                (const char *)azf_value_data(uri, NULL));
    }
    azf_value_map_free(caps);
    return rc;
}

/* flag > host.json > default. */
static long long pick(long long flag, long long file, long long def)
{
    return flag >= 0 ? flag : file >= 0 ? file : def;
}

static void resolve_limits(runner *r)
{
    const azf__runner_opts *o = r->o;
    const azf__settings *s = &r->settings;
    struct rlimit nofile;
    long long fds = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY
                        ? (long long)nofile.rlim_cur
                        : 1024;
    /* Below the descriptor limit, leaving room for the app's own files and sockets. */
    long long conns = fds - (fds / 8 > 64 ? fds / 8 : 64);
    r->max_body = pick(o->max_body, s->max_body, 100LL << 20);
    r->max_header_count = pick(o->max_header_count, s->max_header_count, 100);
    r->max_header_bytes = pick(o->max_header_bytes, s->max_header_bytes, 32 << 10);
    r->max_request_line = pick(o->max_request_line, s->max_request_line, 8 << 10);
    r->max_connections = pick(o->max_connections, s->max_connections, conns > 16 ? conns : 16);
    r->read_timeout_ms = pick(o->read_timeout_ms, s->read_timeout_ms, 30000);
    r->keep_alive_timeout_ms = pick(o->keep_alive_timeout_ms, s->keep_alive_timeout_ms, 130000);
    r->function_timeout_ms = pick(o->function_timeout_ms, s->function_timeout_ms, 30 * 60000);
}

int azf__runner_serve(const azf__runner_opts *o)
{
    runner r_, *r = &r_;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->exit_code = 1;
    r->listen_fd = o->listen_fd;
    r->done_fd = -1;
    pthread_mutex_init(&r->mu, NULL);
    out_color = o->color;
    azf__settings_init(&r->settings);
    azf__errmsg err = {{0}};
    int rc = azf__settings_load(&r->settings, o->dir, &err);
    if (rc != 0) {
        fprintf(stderr, "azfunc start: %s\n", err.text[0] ? err.text : azf_strerror(rc));
        goto out;
    }
    apply_settings(&r->settings);
    r->cors = o->cors ? o->cors : r->settings.cors;
    r->cors_credentials =
        o->cors_credentials >= 0 ? o->cors_credentials : r->settings.cors_credentials;
    resolve_limits(r);
    const char *tz = getenv("WEBSITE_TIME_ZONE");
    if (tz && *tz)
        setenv("TZ", tz, 1);
    r->local_time = getenv("TZ") && *getenv("TZ");
    tzset();

    if (evthread_use_pthreads() != 0 || !(r->base = event_base_new())) {
        fprintf(stderr, "azfunc start: cannot create the event loop\n");
        goto out;
    }
    if (azf__http_start(r) != 0)
        goto out;
    r->done_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (r->done_fd < 0 ||
        !(r->wake = event_new(r->base, r->done_fd, EV_READ | EV_PERSIST, azf__on_wake, r)) ||
        event_add(r->wake, NULL) != 0) {
        fprintf(stderr, "azfunc start: cannot create the event loop\n");
        goto out;
    }
    r->post_ev = event_new(r->base, -1, 0, azf__on_post, r);
    r->sigint = evsignal_new(r->base, SIGINT, azf__on_signal, r);
    r->sigterm = evsignal_new(r->base, SIGTERM, azf__on_signal, r);
    r->sigusr1 = evsignal_new(r->base, SIGUSR1, azf__on_signal, r);
    event_add(r->sigint, NULL);
    event_add(r->sigterm, NULL);
    event_add(r->sigusr1, NULL);

    set_function_filter(o);
    if (azf__runner_open_app(r, on_report) != 0)
        goto out;
    if (o->reload && index_failed) /* a broken edit: the serving app process stays */
        goto out;
    warn_unknown_functions(r);
    if (start_app_server(r) != 0)
        goto out;
    print_functions(r);
    if (azf__runner_storage_start(r) != 0)
        goto out;
    say(C_NONE, "Host started; listening on http://%s:%d", o->host, o->port);
    azf__supervised_ready(r);
    azf__setup_timers(r);
    event_base_dispatch(r->base);
    r->exit_code = 0;
out:
    azf__free_timers(r);
    azf__http_free(r);
    azf__runner_storage_join(r);
    /* Whatever Python still has to finish gets what is left of the grace period. */
    azf__app_close(r->app, r->stopping ? azf__grace_left_ms(r) : 10000);
    if (r->exit_code == 0)
        say(C_NONE, "Stopped");
    /* Completed after the loop ended: drop them. */
    azf__drop_done(r);
    azf__free(r->conns);
    if (r->resume)
        event_free(r->resume);
    azf__runner_storage_free(r);
    if (r->wake)
        event_free(r->wake);
    if (r->done_fd >= 0)
        close(r->done_fd);
    if (r->post_ev)
        event_free(r->post_ev);
    if (r->sigint)
        event_free(r->sigint);
    if (r->sigterm)
        event_free(r->sigterm);
    if (r->sigusr1)
        event_free(r->sigusr1);
    if (r->deadline)
        event_free(r->deadline);
    if (r->base)
        event_base_free(r->base);
    azf__settings_clear(&r->settings);
    azf__free(r->stream_host);
    pthread_mutex_destroy(&r->mu);
    return r->exit_code;
}
