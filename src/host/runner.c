/* `azfunc start`: the local runner. One libevent loop thread owns the HTTP server
 * (evhttp), the timers and the signals; invocations run on their handlers' threads and
 * come back through a queue and an event activated from the completing thread, so the
 * loop never waits for a function. */
#include "host/runner.h"
#include "host/schedule.h"

#include <cjson/cJSON.h>
#include <ctype.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/thread.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

typedef struct runner runner;

/* One invocation in flight: an HTTP request, an admin call or a timer tick. */
typedef struct call {
    runner *r;
    azf_invocation *inv;
    struct evhttp_request *req; /* NULL: no HTTP reply (admin, timer) or client gone */
    struct timespec started;
    struct call *next; /* the completed queue */
} call;

typedef struct timer {
    runner *r;
    const azf_function *fn;
    azf__schedule sched;
    struct event *ev;
    time_t due, last;
} timer;

struct runner {
    const azf__runner_opts *o;
    azf_app *app;
    azf__settings settings;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *wake, *sigint, *sigterm, *deadline;
    pthread_mutex_t mu; /* guards done, inflight, the output */
    call *done;
    int inflight, replying, stopping, local_time;
    timer *timers;
    size_t ntimers;
    int exit_code;
};

/* ---- output -------------------------------------------------------------------- */

static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;
static int out_color;

enum { C_NONE, C_RED, C_GREEN, C_YELLOW, C_CYAN, C_GREY };

static void say(int color, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(int color, const char *fmt, ...)
{
    static const char *const codes[] = {"",         "\033[31m", "\033[32m",
                                        "\033[33m", "\033[36m", "\033[90m"};
    struct timespec ts;
    struct tm tm;
    char stamp[40];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    pthread_mutex_lock(&out_mu);
    printf("[%s.%03ldZ] %s", stamp, ts.tv_nsec / 1000000, out_color && color ? codes[color] : "");
    vprintf(fmt, ap);
    printf("%s\n", out_color && color ? "\033[0m" : "");
    fflush(stdout);
    pthread_mutex_unlock(&out_mu);
    va_end(ap);
}

static int level_color(int level)
{
    return level >= AZF_LOG_ERROR ? C_RED : level == AZF_LOG_WARNING ? C_YELLOW : C_NONE;
}

static void on_python_log(int level, const char *category, const char *message, void *user_data)
{
    const runner *r = user_data;
    (void)category;
    if (level >= r->settings.log_level)
        say(level_color(level), "%s", message);
}

static void on_user_log(azf_invocation *inv, int level, const char *category, const char *message,
                        void *user_data)
{
    const runner *r = ((call *)user_data)->r;
    (void)inv, (void)category;
    int min = r->settings.function_log_level >= 0 ? r->settings.function_log_level
                                                  : r->settings.log_level;
    if (level >= min)
        say(level_color(level), "%s", message);
}

static void on_report(const azf_function *fn, const char *error, void *user_data)
{
    (void)user_data;
    if (fn)
        say(C_RED, "Function '%s' cannot run: %s", azf_function_name(fn), error);
    else
        say(C_RED, "The function app failed to index: %s", error);
}

/* ---- invocations ----------------------------------------------------------------- */

static void new_id(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) {
        for (int i = 0; i < 16; i++)
            b[i] = (unsigned char)rand();
    }
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void on_complete(azf_invocation *inv, void *user_data)
{
    call *c = user_data;
    (void)inv;
    runner *r = c->r;
    pthread_mutex_lock(&r->mu);
    c->next = r->done;
    r->done = c;
    pthread_mutex_unlock(&r->mu);
    event_active(r->wake, EV_READ, 0);
}

/* Creates and starts an invocation with `input` (owned) for the trigger. NULL when it
 * could not start (the reason is printed). */
static call *start_call(runner *r, const azf_function *fn, azf_value *input, const char *reason,
                        struct evhttp_request *req)
{
    char id[37];
    new_id(id);
    call *c = azf__calloc(1, sizeof *c);
    const azf_binding *trig = azf_function_trigger(fn);
    int rc = c ? azf_invocation_new(&c->inv, fn, id) : AZF_E_NOMEM;
    if (rc == 0 && trig)
        rc = azf_invocation_set_input(c->inv, azf_binding_name(trig), input);
    else
        azf_value_free(input);
    if (rc != 0) {
        say(C_RED, "Cannot invoke '%s': %s", azf_function_name(fn), azf_strerror(rc));
        if (c)
            azf_invocation_free(c->inv);
        azf__free(c);
        return NULL;
    }
    c->r = r;
    c->req = req;
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    azf_invocation_set_on_log(c->inv, on_user_log, c);
    azf_invocation_set_on_complete(c->inv, on_complete, c);
    r->inflight++;
    say(C_NONE, "Executing 'Functions.%s' (Reason='%s', Id=%s)", azf_function_name(fn), reason, id);
    azf_invocation_start(c->inv);
    return c;
}

/* ---- HTTP ---------------------------------------------------------------------- */

static const char *method_name(enum evhttp_cmd_type m)
{
    switch (m) {
    case EVHTTP_REQ_GET:
        return "GET";
    case EVHTTP_REQ_POST:
        return "POST";
    case EVHTTP_REQ_HEAD:
        return "HEAD";
    case EVHTTP_REQ_PUT:
        return "PUT";
    case EVHTTP_REQ_DELETE:
        return "DELETE";
    case EVHTTP_REQ_OPTIONS:
        return "OPTIONS";
    case EVHTTP_REQ_TRACE:
        return "TRACE";
    case EVHTTP_REQ_CONNECT:
        return "CONNECT";
    case EVHTTP_REQ_PATCH:
        return "PATCH";
    }
    return "GET";
}

static void reply_text(struct evhttp_request *req, int code, const char *reason, const char *text)
{
    struct evbuffer *b = evhttp_request_get_output_buffer(req);
    if (text) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                          "text/plain; charset=utf-8");
        evbuffer_add(b, text, strlen(text));
    }
    evhttp_send_reply(req, code, reason, NULL);
}

/* The request as the host hands it to a worker (host-protocol.md §1.6, §10.6-10.7). */
static azf_value *request_value(runner *r, struct evhttp_request *req, const char *path,
                                const char *query, azf_value_map *route)
{
    azf_value *v = NULL, *body = NULL;
    if (azf_value_new_http(&v) != 0)
        return NULL;
    int rc = azf_value_http_set_method(v, method_name(evhttp_request_get_command(req)));
    char *url = azf__asprintf("http://%s:%d%s%s%s", r->o->host, r->o->port, path, query ? "?" : "",
                              query ? query : "");
    rc = rc ? rc : url ? azf_value_http_set_url(v, url) : AZF_E_NOMEM;
    azf__free(url);
    const struct evkeyvalq *hs = evhttp_request_get_input_headers(req);
    for (struct evkeyval *h = hs->tqh_first; rc == 0 && h; h = h->next.tqe_next) {
        char *key = azf__strdup(h->key), *joined = NULL;
        const char *old = NULL;
        if (!key) {
            rc = AZF_E_NOMEM;
            break;
        }
        for (char *p = key; *p; p++)
            *p = (char)tolower((unsigned char)*p);
        if (azf_value_http_get(v, AZF_HTTP_HEADERS, key, &old) == 1 && old)
            joined = azf__asprintf("%s, %s", old, h->value);
        rc = azf_value_http_set(v, AZF_HTTP_HEADERS, key, joined ? joined : h->value);
        azf__free(joined);
        azf__free(key);
    }
    struct evkeyvalq q = {0};
    if (rc == 0 && query && evhttp_parse_query_str(query, &q) == 0) {
        for (struct evkeyval *h = q.tqh_first; rc == 0 && h; h = h->next.tqe_next)
            if (*h->value) /* the host drops empty query values */
                rc = azf_value_http_set(v, AZF_HTTP_QUERY, h->key, h->value);
    }
    evhttp_clear_headers(&q);
    for (size_t i = 0; rc == 0 && route && i < azf_value_map_count(route); i++) {
        const char *k;
        const azf_value *rv = azf_value_map_at(route, i, &k);
        rc = azf_value_http_set(v, AZF_HTTP_PARAMS, k, azf_value_data(rv, NULL));
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    if (rc == 0 && n > 0) {
        rc = azf_value_new_data(&body, AZF_VALUE_BYTES, evbuffer_pullup(in, -1), n);
        if (rc == 0 && (rc = azf_value_http_set_body(v, body)) != 0)
            azf_value_free(body);
    }
    if (rc != 0) {
        azf_value_free(v);
        return NULL;
    }
    return v;
}

static void add_cookie(struct evkeyvalq *out, const azf_cookie *ck)
{
    azf_buf b = AZF_BUF_INIT;
    const char *s;
    char tmp[96];
    int64_t secs;
    int32_t nanos;
    double age;
    azf__buf_printf(&b, "%s=%s", azf_cookie_name(ck), azf_cookie_value(ck));
#define APPEND(str) azf_buf_append(&b, str, strlen(str))
    if ((s = azf_cookie_domain(ck)))
        APPEND("; domain="), APPEND(s);
    if ((s = azf_cookie_path(ck)))
        APPEND("; path="), APPEND(s);
    if (azf_cookie_expires(ck, &secs, &nanos)) {
        time_t t = (time_t)secs;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(tmp, sizeof tmp, "; expires=%a, %d %b %Y %H:%M:%S GMT", &tm);
        APPEND(tmp);
    }
    if (azf_cookie_max_age(ck, &age))
        snprintf(tmp, sizeof tmp, "; max-age=%.0f", age), APPEND(tmp);
    if (azf_cookie_secure(ck) == 1)
        APPEND("; secure");
    static const char *const same[] = {"", "; samesite=lax", "; samesite=strict",
                                       "; samesite=none"};
    int ss = azf_cookie_same_site(ck);
    if (ss > 0 && ss < 4)
        APPEND(same[ss]);
    if (azf_cookie_http_only(ck) == 1)
        APPEND("; httponly");
#undef APPEND
    if (b.ptr)
        evhttp_add_header(out, "Set-Cookie", b.ptr);
    azf_buf_dispose(&b);
}

static void add_body(struct evhttp_request *req, const azf_value *body, int set_type)
{
    size_t n = 0;
    const void *d = azf_value_data(body, &n);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    char num[32];
    if (!d && (azf_value_kind(body) == AZF_VALUE_INT || azf_value_kind(body) == AZF_VALUE_DOUBLE)) {
        if (azf_value_kind(body) == AZF_VALUE_INT)
            snprintf(num, sizeof num, "%" PRId64, azf_value_int(body));
        else
            snprintf(num, sizeof num, "%.17g", azf_value_double(body));
        d = num, n = strlen(num);
    }
    if (set_type && d && !evhttp_find_header(h, "Content-Type"))
        evhttp_add_header(h, "Content-Type",
                          azf_value_kind(body) == AZF_VALUE_JSON ? "application/json"
                          : azf_value_kind(body) == AZF_VALUE_BYTES ||
                                  azf_value_kind(body) == AZF_VALUE_STREAM
                              ? "application/octet-stream"
                              : "text/plain; charset=utf-8");
    if (d && n)
        evbuffer_add(evhttp_request_get_output_buffer(req), d, n);
}

/* The HTTP output of a completed invocation: $return (or the implicit return), else
 * the first http output binding. */
static const azf_value *http_output(azf_invocation *inv)
{
    const azf_value *rv = azf_invocation_return_value(inv);
    if (rv)
        return rv;
    const azf_function *fn = azf_invocation_function(inv);
    for (size_t i = 0; i < azf_function_binding_count(fn); i++) {
        const azf_binding *b = azf_function_binding(fn, i);
        if (azf_binding_direction(b) != AZF_DIRECTION_IN &&
            strcasecmp(azf_binding_type(b), "http") == 0)
            return azf_value_map_get(azf_invocation_outputs(inv), azf_binding_name(b));
    }
    return NULL;
}

static void send_response(call *c)
{
    struct evhttp_request *req = c->req;
    int st = azf_invocation_status(c->inv);
    if (st != AZF_INVOCATION_SUCCEEDED) {
        evhttp_send_reply(req, 500, "Internal Server Error", NULL);
        return;
    }
    const azf_value *out = http_output(c->inv);
    if (azf_value_kind(out) != AZF_VALUE_HTTP) {
        if (!out || azf_value_kind(out) == AZF_VALUE_NULL) {
            evhttp_send_reply(req, 204, "No Content", NULL);
            return;
        }
        add_body(req, out, 1);
        evhttp_send_reply(req, 200, "OK", NULL);
        return;
    }
    const char *sc = azf_value_http_status_code(out);
    char *end = NULL;
    long code = sc && *sc ? strtol(sc, &end, 10) : 200;
    if ((end && *end) || code < 100 || code > 999) {
        say(C_RED, "Function '%s' returned an invalid status code '%s'",
            azf_function_name(azf_invocation_function(c->inv)), sc);
        evhttp_send_reply(req, 500, "Internal Server Error", NULL);
        return;
    }
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    for (size_t i = 0; i < azf_value_http_count(out, AZF_HTTP_HEADERS); i++) {
        const char *v, *k = azf_value_http_entry(out, AZF_HTTP_HEADERS, i, &v);
        if (v && strcasecmp(k, "content-length") != 0 && strcasecmp(k, "transfer-encoding") != 0)
            evhttp_add_header(h, k, v);
    }
    for (size_t i = 0; i < azf_value_http_cookie_count(out); i++)
        add_cookie(h, azf_value_http_cookie(out, i));
    add_body(req, azf_value_http_body(out), 1);
    evhttp_send_reply(req, (int)code, NULL, NULL);
}

static void maybe_exit(runner *r)
{
    if (r->stopping && r->inflight == 0 && r->replying == 0)
        event_base_loopexit(r->base, NULL);
}

/* A reply has been written out: shutdown waits for these too. */
static void on_sent(struct evhttp_request *req, void *arg)
{
    runner *r = arg;
    (void)req;
    r->replying--;
    maybe_exit(r);
}

static void on_connection_close(struct evhttp_connection *con, void *arg)
{
    call *c = arg;
    (void)con;
    c->req = NULL; /* evhttp frees the request; the invocation finishes unanswered */
}

static void finish(runner *r, call *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms =
        (now.tv_sec - c->started.tv_sec) * 1000 + (now.tv_nsec - c->started.tv_nsec) / 1000000;
    int st = azf_invocation_status(c->inv);
    const char *name = azf_function_name(azf_invocation_function(c->inv));
    const char *what = st == AZF_INVOCATION_SUCCEEDED   ? "Succeeded"
                       : st == AZF_INVOCATION_CANCELLED ? "Cancelled"
                                                        : "Failed";
    say(st == AZF_INVOCATION_SUCCEEDED ? C_GREEN : C_RED,
        "Executed 'Functions.%s' (%s, Id=%s, Duration=%ldms)", name, what,
        azf_invocation_id(c->inv), ms);
    if (st == AZF_INVOCATION_FAILED) {
        const char *stack = azf_invocation_error_stack(c->inv);
        say(C_RED, "System.Exception: Result: Failure\nException: %s%s%s",
            azf_invocation_error_message(c->inv), *stack ? "\nStack: " : "", stack);
    }
    if (c->req) {
        evhttp_connection_set_closecb(evhttp_request_get_connection(c->req), NULL, NULL);
        r->replying++;
        evhttp_request_set_on_complete_cb(c->req, on_sent, r);
        send_response(c);
    }
    azf_invocation_free(c->inv);
    azf__free(c);
    r->inflight--;
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    runner *r = arg;
    (void)fd, (void)what;
    pthread_mutex_lock(&r->mu);
    call *c = r->done;
    r->done = NULL;
    pthread_mutex_unlock(&r->mu);
    while (c) {
        call *next = c->next;
        finish(r, c);
        c = next;
    }
    maybe_exit(r);
}

/* The timer trigger's input, the JSON the host sends. */
static azf_value *timer_value(time_t last, time_t next, int past_due)
{
    char l[32], n[32], buf[256];
    struct tm tm;
    gmtime_r(&last, &tm);
    strftime(l, sizeof l, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    gmtime_r(&next, &tm);
    strftime(n, sizeof n, "%Y-%m-%dT%H:%M:%S+00:00", &tm);
    snprintf(buf, sizeof buf,
             "{\"Schedule\":{\"AdjustForDST\":true},\"ScheduleStatus\":{\"Last\":\"%s\","
             "\"Next\":\"%s\",\"LastUpdated\":\"%s\"},\"IsPastDue\":%s}",
             l, n, l, past_due ? "true" : "false");
    azf_value *v = NULL;
    azf_value_new_data(&v, AZF_VALUE_JSON, buf, strlen(buf));
    return v;
}

static int is_http(const azf_function *fn)
{
    return azf_function_route(fn) != NULL;
}

static void on_admin(runner *r, struct evhttp_request *req, const char *name)
{
    const azf_function *fn = azf_app_find(r->app, name);
    if (evhttp_request_get_command(req) != EVHTTP_REQ_POST) {
        reply_text(req, 405, "Method Not Allowed", NULL);
        return;
    }
    if (!fn) {
        reply_text(req, 404, "Not Found", NULL);
        return;
    }
    if (is_http(fn)) {
        reply_text(req, 400, "Bad Request",
                   "HTTP-triggered functions are invoked on their route\n");
        return;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t n = evbuffer_get_length(in);
    cJSON *body = n ? cJSON_ParseWithLength((const char *)evbuffer_pullup(in, -1), n) : NULL;
    const cJSON *input = cJSON_GetObjectItemCaseSensitive(body, "input");
    if (n && (!cJSON_IsObject(body) || (input && !cJSON_IsString(input)))) {
        cJSON_Delete(body);
        reply_text(req, 400, "Bad Request", "expected {\"input\": \"<string>\"}\n");
        return;
    }
    const char *text = cJSON_IsString(input) ? input->valuestring : "";
    azf_value *v = NULL;
    const azf_binding *trig = azf_function_trigger(fn);
    if (trig && strcasecmp(azf_binding_type(trig), "timerTrigger") == 0 && !*text) {
        time_t now = time(NULL);
        v = timer_value(now, now, 0);
    } else {
        azf_value_new_string(&v, text);
    }
    cJSON_Delete(body);
    if (v)
        start_call(r, fn, v, "This function was programmatically called via the host APIs.", NULL);
    reply_text(req, v ? 202 : 500, v ? "Accepted" : "Internal Server Error", NULL);
}

static void on_request(struct evhttp_request *req, void *arg)
{
    runner *r = arg;
    const struct evhttp_uri *uri = evhttp_request_get_evhttp_uri(req);
    const char *path = uri ? evhttp_uri_get_path(uri) : NULL;
    const char *query = uri ? evhttp_uri_get_query(uri) : NULL;
    if (!path || !*path)
        path = "/";
    if (r->stopping) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Connection", "close");
        reply_text(req, 503, "Service Unavailable", NULL);
        return;
    }
    if (strncmp(path, "/admin/functions/", 17) == 0 && path[17] && !strchr(path + 17, '/')) {
        on_admin(r, req, path + 17);
        return;
    }
    const char *prefix = r->settings.route_prefix ? r->settings.route_prefix : "api";
    size_t pl = strlen(prefix);
    const char *rest = path + 1;
    if (pl) {
        if (strncmp(rest, prefix, pl) != 0 || (rest[pl] && rest[pl] != '/')) {
            reply_text(req, 404, "Not Found", NULL);
            return;
        }
        rest += pl;
    }
    const azf_function *fn = NULL;
    azf_value_map *route = NULL;
    int rc = azf_registry_match_route(
        azf_app_registry(r->app), method_name(evhttp_request_get_command(req)), rest, &fn, &route);
    if (rc == AZF_E_NOTFOUND || rc == AZF_E_INVALID) {
        reply_text(req, 404, "Not Found", NULL);
        return;
    }
    if (rc == AZF_E_UNSUPPORTED) {
        reply_text(req, 405, "Method Not Allowed", NULL);
        return;
    }
    azf_value *v = rc == 0 ? request_value(r, req, path, query, route) : NULL;
    azf_value_map_free(route);
    call *c = v ? start_call(r, fn, v,
                             "This function was programmatically called via the host APIs.", req)
                : NULL;
    if (!c) {
        reply_text(req, 500, "Internal Server Error", NULL);
        return;
    }
    evhttp_connection_set_closecb(evhttp_request_get_connection(req), on_connection_close, c);
}

/* ---- timers --------------------------------------------------------------------- */

static void arm(timer *t, time_t after)
{
    if (azf__schedule_next(&t->sched, after, t->r->local_time, &t->due) != 0) {
        say(C_YELLOW, "Timer '%s' never fires again", azf_function_name(t->fn));
        return;
    }
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    double d = (double)t->due - ((double)now.tv_sec + now.tv_nsec / 1e9);
    struct timeval tv = {0, 0};
    if (d > 86400.0 * 366) /* re-armed on expiry; keeps the conversion below in range */
        d = 86400.0 * 366;
    if (d > 0) {
        tv.tv_sec = (time_t)d;
        tv.tv_usec = (suseconds_t)((d - (double)tv.tv_sec) * 1e6);
    }
    evtimer_add(t->ev, &tv);
}

static void fire(timer *t, const char *reason, int past_due)
{
    time_t now = time(NULL), next = now;
    azf__schedule_next(&t->sched, now, t->r->local_time, &next);
    char why[96];
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(why, sizeof why, "Timer fired at %Y-%m-%dT%H:%M:%S+00:00", &tm);
    start_call(t->r, t->fn, timer_value(t->last ? t->last : now, next, past_due),
               reason ? reason : why, NULL);
    t->last = now;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    timer *t = arg;
    (void)fd, (void)what;
    time_t now = time(NULL);
    if (t->r->stopping)
        return;
    if (now < t->due) { /* woke early (clock adjustments): wait again */
        arm(t, now - 1 < t->due - 1 ? t->due - 1 : now);
        return;
    }
    fire(t, NULL, now > t->due + 1);
    arm(t, now > t->due ? now : t->due);
}

/* Resolves "%NAME%" app-setting references as the host does. */
static char *resolve_setting(const char *text)
{
    size_t n = strlen(text);
    if (n > 2 && text[0] == '%' && text[n - 1] == '%') {
        char *name = azf__strndup(text + 1, n - 2);
        const char *v = name ? getenv(name) : NULL;
        azf__free(name);
        return azf__strdup(v ? v : "");
    }
    return azf__strdup(text);
}

static void setup_timers(runner *r)
{
    size_t n = azf_app_function_count(r->app);
    r->timers = azf__calloc(n ? n : 1, sizeof *r->timers);
    for (size_t i = 0; r->timers && i < n; i++) {
        const azf_function *fn = azf_app_function_at(r->app, i);
        const azf_binding *trig = azf_function_trigger(fn);
        if (!trig || strcasecmp(azf_binding_type(trig), "timerTrigger") != 0 ||
            azf_function_is_disabled(fn) || azf_function_load_error(fn))
            continue;
        cJSON *b = cJSON_Parse(azf_binding_json(trig));
        const cJSON *sched = cJSON_GetObjectItemCaseSensitive(b, "schedule");
        const cJSON *startup = cJSON_GetObjectItemCaseSensitive(b, "runOnStartup");
        timer *t = &r->timers[r->ntimers];
        azf__errmsg err = {{0}};
        char *text = cJSON_IsString(sched) ? resolve_setting(sched->valuestring) : NULL;
        int rc = text ? azf__schedule_parse(&t->sched, text, &err)
                      : azf__err(&err, AZF_E_PARSE, "the binding has no \"schedule\" string");
        azf__free(text);
        if (rc != 0) {
            say(C_RED, "Timer '%s': invalid schedule: %s", azf_function_name(fn), err.text);
        } else {
            t->r = r;
            t->fn = fn;
            t->ev = evtimer_new(r->base, on_timer, t);
            r->ntimers++;
            if (cJSON_IsTrue(startup) ||
                (cJSON_IsString(startup) && strcasecmp(startup->valuestring, "true") == 0))
                fire(t, "Timer fired at startup (runOnStartup)", 0);
            arm(t, time(NULL));
        }
        cJSON_Delete(b);
    }
}

/* ---- signals and the main loop ------------------------------------------------------ */

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    runner *r = arg;
    (void)fd, (void)what;
    say(C_YELLOW, "%d invocation(s) still running after the shutdown grace period", r->inflight);
    event_base_loopexit(r->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    runner *r = arg;
    (void)what;
    if (r->stopping)
        return;
    r->stopping = 1;
    say(C_NONE, "%s received: stopping (waiting for %d invocation(s))",
        sig == SIGINT ? "SIGINT" : "SIGTERM", r->inflight);
    if (r->bound)
        evhttp_del_accept_socket(r->http, r->bound);
    r->bound = NULL;
    for (size_t i = 0; i < r->ntimers; i++)
        evtimer_del(r->timers[i].ev);
    struct timeval tv = {r->o->grace_ms / 1000, (r->o->grace_ms % 1000) * 1000};
    r->deadline = evtimer_new(r->base, on_deadline, r);
    evtimer_add(r->deadline, &tv);
    maybe_exit(r);
}

static void print_functions(runner *r)
{
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
        if (is_http(fn)) {
            size_t m = azf_function_method_count(fn);
            printf("[");
            for (size_t j = 0; j < m; j++)
                printf("%s%s", j ? "," : "", azf_function_method(fn, j));
            printf("%s] %shttp://%s:%d/%s%s%s%s\n\n",
                   m ? "" : "GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS", out_color ? "\033[32m" : "",
                   r->o->host, r->o->port, prefix, *prefix ? "/" : "", azf_function_route(fn),
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

int azf__runner_run(const azf__runner_opts *o)
{
    runner r_, *r = &r_;
    memset(r, 0, sizeof *r);
    r->o = o;
    r->exit_code = 1;
    pthread_mutex_init(&r->mu, NULL);
    out_color = o->color;
    azf__settings_init(&r->settings);
    azf__errmsg err = {{0}};
    azf_python_opts *popts = NULL;
    int rc = azf__settings_load(&r->settings, o->dir, &err);
    if (rc != 0) {
        fprintf(stderr, "azfunc start: %s\n", err.text[0] ? err.text : azf_strerror(rc));
        goto out;
    }
    apply_settings(&r->settings);
    const char *tz = getenv("WEBSITE_TIME_ZONE");
    if (tz && *tz)
        setenv("TZ", tz, 1);
    r->local_time = getenv("TZ") && *getenv("TZ");
    tzset();

    if (evthread_use_pthreads() != 0 || !(r->base = event_base_new()) ||
        !(r->http = evhttp_new(r->base))) {
        fprintf(stderr, "azfunc start: cannot create the event loop\n");
        goto out;
    }
    evhttp_set_gencb(r->http, on_request, r);
    evhttp_set_max_body_size(r->http, (ev_ssize_t)o->max_body);
    evhttp_set_allowed_methods(r->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_HEAD |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
                                            EVHTTP_REQ_OPTIONS | EVHTTP_REQ_PATCH);
    if (!(r->bound = evhttp_bind_socket_with_handle(r->http, o->host, (ev_uint16_t)o->port))) {
        fprintf(stderr, "azfunc start: cannot listen on %s:%d\n", o->host, o->port);
        goto out;
    }
    r->wake = event_new(r->base, -1, 0, on_wake, r);
    r->sigint = evsignal_new(r->base, SIGINT, on_signal, r);
    r->sigterm = evsignal_new(r->base, SIGTERM, on_signal, r);
    event_add(r->sigint, NULL);
    event_add(r->sigterm, NULL);

    if ((rc = azf_python_opts_new(&popts)) == 0)
        rc = azf_python_opts_set_log_callback(popts, on_python_log, r);
    if (rc == 0 && getenv("VIRTUAL_ENV") == NULL && o->venv)
        rc = azf_python_opts_set_venv(popts, o->venv);
    if (rc == 0)
        rc = azf__app_open(&r->app, o->dir, popts, on_report, NULL);
    if (rc != 0) {
        fprintf(stderr, "azfunc start: cannot open the function app in %s: %s\n", o->dir,
                azf_strerror(rc));
        goto out;
    }
    print_functions(r);
    say(C_NONE, "Host started; listening on http://%s:%d", o->host, o->port);
    setup_timers(r);
    event_base_dispatch(r->base);
    say(C_NONE, "Stopped");
    r->exit_code = 0;
out:
    for (size_t i = 0; i < r->ntimers; i++)
        event_free(r->timers[i].ev);
    azf__free(r->timers);
    if (r->http)
        evhttp_free(r->http);
    /* Completed after the loop ended: drop them. */
    azf_app_free(r->app);
    for (call *c = r->done, *next; c; c = next) {
        next = c->next;
        azf_invocation_free(c->inv);
        azf__free(c);
    }
    if (r->wake)
        event_free(r->wake);
    if (r->sigint)
        event_free(r->sigint);
    if (r->sigterm)
        event_free(r->sigterm);
    if (r->deadline)
        event_free(r->deadline);
    if (r->base)
        event_base_free(r->base);
    azf_python_opts_free(popts);
    azf__settings_clear(&r->settings);
    pthread_mutex_destroy(&r->mu);
    return r->exit_code;
}
