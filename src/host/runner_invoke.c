/* `azfunc start`, the invocations: starting them on their handlers' threads, and, back
 * on the loop thread through a queue and an event activated from the completing thread,
 * logging them and answering their HTTP requests. The loop never waits for a function. */
#include "host/runner_internal.h"
#include "host/trace_context.h"
#include "marshal/marshal_internal.h"

#include <ctype.h>
#include <errno.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The runner's span for this request, continuing the client's traceparent (and then
 * its tracestate), so context.trace_context is real and OpenTelemetry spans nest. */
static void trace_context(azf_invocation *inv, azf__http_req *req)
{
    const struct evkeyvalq *h = req ? &req->in_headers : NULL;
    char tp[AZF__TRACE_PARENT_LEN + 1];
    int cont = azf__trace_parent_new(h ? evhttp_find_header(h, "traceparent") : NULL, tp);
    const char *ts = cont ? evhttp_find_header(h, "tracestate") : NULL;
    azf_invocation_set_trace_context(inv, tp, ts ? ts : "", NULL);
}

/* Any thread: queues c for the loop. Only the completion that finds the queue empty
 * wakes the loop (one eventfd write), and no lock of the loop's is taken: under load
 * the loop drains many completions per wake-up. */
static void on_complete(azf_invocation *inv, void *user_data)
{
    call *c = user_data;
    (void)inv;
    runner *r = c->r;
    pthread_mutex_lock(&r->mu);
    int first = !r->done;
    c->next = r->done;
    r->done = c;
    pthread_mutex_unlock(&r->mu);
    uint64_t one = 1;
    if (first)
        while (write(r->done_fd, &one, sizeof one) < 0 && errno == EINTR)
            ;
}

/* The input/output step is done (bindings.h); error: why it failed. */
static void on_bindings_done(azf_invocation *inv, const char *error, void *user_data)
{
    call *c = user_data;
    if (error && !(c->binding_error = azf__strdup(error)))
        c->binding_error = azf__strdup("out of memory");
    on_complete(inv, c);
}

static call *start_call(runner *r, const azf_function *fn, azf_value *input,
                        azf_value_map *metadata, const char *reason, azf__http_req *req,
                        azf__settled_fn settled, void *settled_arg)
{
    char id[37];
    azf__new_guid(id);
    call *c = azf__calloc(1, sizeof *c);
    const azf_binding *trig = azf_function_trigger(fn);
    int rc = c ? azf_invocation_new(&c->inv, fn, id) : AZF_E_NOMEM;
    if (rc == 0 && trig)
        rc = azf_invocation_set_input(c->inv, azf_binding_name(trig), input);
    else
        azf_value_free(input);
    if (rc == 0 && metadata)
        rc = azf_invocation_set_trigger_metadata(c->inv, metadata);
    else
        azf_value_map_free(metadata);
    if (rc != 0) {
        say(C_RED, "Cannot invoke '%s': %s", azf_function_name(fn), azf_strerror(rc));
        if (c)
            azf_invocation_free(c->inv);
        azf__free(c);
        if (settled)
            settled(-1, settled_arg);
        return NULL;
    }
    c->r = r;
    c->req = req;
    c->settled = settled;
    c->settled_arg = settled_arg;
    trace_context(c->inv, req);
    clock_gettime(CLOCK_MONOTONIC, &c->started);
    azf_invocation_set_on_log(c->inv, azf__on_user_log, c);
    r->inflight++;
    /* Before it starts: the app process may die while the function runs. */
    c->slot = azf__supervised_begin(azf_function_name(fn), id, req ? azf__http_fd(r, req) : -1);
    say(C_NONE, "Executing 'Functions.%s' (Reason='%s', Id=%s)", azf_function_name(fn), reason, id);
    if (r->bindings && azf__bindings_wanted(fn)) { /* storage inputs and outputs */
        azf__bindings_run(r->bindings, c->inv, on_bindings_done, c);
        return c;
    }
    azf_invocation_set_on_complete(c->inv, on_complete, c);
    azf_invocation_start(c->inv);
    return c;
}

/* Creates and starts an invocation with `input` (owned) for the trigger. NULL when it
 * could not start (the reason is printed). */
call *azf__start_call(runner *r, const azf_function *fn, azf_value *input, const char *reason,
                      azf__http_req *req)
{
    return start_call(r, fn, input, NULL, reason, req, NULL, NULL);
}

call *azf__start_call_metadata(runner *r, const azf_function *fn, azf_value *input,
                               azf_value_map *metadata, const char *reason)
{
    return start_call(r, fn, input, metadata, reason, NULL, NULL, NULL);
}

/* ---- invocations posted by the storage triggers' threads ---- */

typedef struct azf__posted {
    const azf_function *fn;
    azf_value *input;
    azf_value_map *metadata;
    char *reason;
    azf__settled_fn settled;
    void *arg;
    struct azf__posted *next;
} posted;

int azf__post_call(void *runner_, const azf_function *fn, azf_value *input, azf_value_map *metadata,
                   const char *reason, azf__settled_fn settled, void *arg)
{
    runner *r = runner_;
    posted *p = azf__calloc(1, sizeof *p);
    char *why = azf__strdup(reason);
    if (!p || !why) {
        azf__free(p), azf__free(why);
        azf_value_free(input);
        azf_value_map_free(metadata);
        return AZF_E_NOMEM;
    }
    *p = (posted){fn, input, metadata, why, settled, arg, NULL};
    pthread_mutex_lock(&r->mu);
    posted **tail = &r->posted; /* in order */
    while (*tail)
        tail = &(*tail)->next;
    *tail = p;
    pthread_mutex_unlock(&r->mu);
    event_active(r->post_ev, EV_READ, 0);
    return 0;
}

void azf__on_post(evutil_socket_t fd, short what, void *arg)
{
    runner *r = arg;
    (void)fd, (void)what;
    pthread_mutex_lock(&r->mu);
    posted *p = r->posted;
    r->posted = NULL;
    pthread_mutex_unlock(&r->mu);
    while (p) {
        posted *next = p->next;
        if (r->stopping) { /* too late: the trigger releases its message */
            azf_value_free(p->input);
            azf_value_map_free(p->metadata);
            p->settled(-1, p->arg);
        } else {
            start_call(r, p->fn, p->input, p->metadata, p->reason, NULL, p->settled, p->arg);
        }
        azf__free(p->reason);
        azf__free(p);
        p = next;
    }
    azf__maybe_exit(r);
}

/* Header fields by lower-cased name, in first-seen order, repeated fields joined with
 * ", " (RFC 9110 5.3): one hash lookup per field, so collecting is linear in the
 * request's size whatever its fields. An ordinary request (up to SMALL fields, names
 * shorter than SHORT_NAME bytes, no repeats) is collected without allocating. */
enum { SMALL = 32, SHORT_NAME = 64 };

typedef struct field {
    char *name;        /* lower-cased: in short_name, else allocated */
    const char *value; /* the first one's (the request's) */
    azf_buf joined;    /* a repeated field's values, joined */
    size_t next;       /* hash chain, +1 (0: end) */
    char short_name[SHORT_NAME];
} field;

static size_t hash(const char *s)
{
    size_t h = 1469598103934665603u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

/* The hash table's size for n entries: a power of two, at least 2n. */
static size_t buckets_for(size_t n)
{
    size_t nb = 1;
    while (nb < 2 * n)
        nb *= 2;
    return nb;
}

static int add_headers(azf_value *v, const struct evkeyvalq *hs)
{
    size_t n = 0, nf = 0;
    for (const struct evkeyval *h = hs->tqh_first; h; h = h->next.tqe_next)
        n++;
    size_t nb = buckets_for(n), small_bucket[2 * SMALL];
    field small_f[SMALL];
    field *f = n <= SMALL ? small_f : azf__calloc(n, sizeof *f);
    size_t *bucket = nb <= 2 * SMALL ? small_bucket : azf__calloc(nb, sizeof *bucket);
    int rc = f && bucket ? 0 : AZF_E_NOMEM;
    if (rc == 0)
        memset(bucket, 0, nb * sizeof *bucket);
    for (const struct evkeyval *h = hs->tqh_first; rc == 0 && h; h = h->next.tqe_next) {
        size_t len = strlen(h->key);
        field *slot = &f[nf]; /* the next free entry */
        char *key = len < SHORT_NAME ? slot->short_name : azf__malloc(len + 1);
        if (!key) {
            rc = AZF_E_NOMEM;
            break;
        }
        for (size_t i = 0; i <= len; i++)
            key[i] = (char)tolower((unsigned char)h->key[i]);
        size_t *at = &bucket[hash(key) & (nb - 1)];
        while (*at && strcmp(f[*at - 1].name, key) != 0)
            at = &f[*at - 1].next;
        if (*at) {
            if (key != slot->short_name)
                azf__free(key);
            field *e = &f[*at - 1];
            azf_buf *b = &e->joined;
            if ((!b->ptr && azf_buf_append(b, e->value, strlen(e->value))) ||
                azf_buf_append(b, ", ", 2) || azf_buf_append(b, h->value, strlen(h->value)))
                rc = AZF_E_NOMEM;
        } else {
            slot->name = key;
            slot->value = h->value;
            slot->joined = (azf_buf)AZF_BUF_INIT;
            slot->next = 0;
            *at = ++nf;
        }
    }
    for (size_t i = 0; i < nf; i++) {
        if (rc == 0) /* joined.ptr is NUL-terminated */
            rc = azf__http_append(v, AZF_HTTP_HEADERS, f[i].name,
                                  f[i].joined.ptr ? f[i].joined.ptr : f[i].value);
        if (f[i].name != f[i].short_name)
            azf__free(f[i].name);
        azf_buf_dispose(&f[i].joined);
    }
    if (f != small_f)
        azf__free(f);
    if (bucket != small_bucket)
        azf__free(bucket);
    return rc;
}

/* RFC 3629 well-formed UTF-8 (what a Python str can hold). */
int azf__utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80                  ? 0
                : *p >= 0xc2 && *p <= 0xdf ? 1
                : (*p & 0xf0) == 0xe0      ? 2
                : *p >= 0xf0 && *p <= 0xf4 ? 3
                                           : -1;
        if (n < 0)
            return 0;
        unsigned lo = 0x80, hi = 0xbf;
        if (*p == 0xe0)
            lo = 0xa0;
        else if (*p == 0xed)
            hi = 0x9f;
        else if (*p == 0xf0)
            lo = 0x90;
        else if (*p == 0xf4)
            hi = 0x8f;
        p++;
        for (int i = 0; i < n; i++, p++) {
            if (*p < (i ? 0x80 : lo) || *p > (i ? 0xbf : hi))
                return 0;
        }
    }
    return 1;
}

/* Query parameters, percent-decoded by evhttp; a repeated name keeps its last value and
 * empty values are dropped, as the host does. Linear like add_headers. AZF_E_PARSE when
 * a decoded name or value is not UTF-8 (or holds NUL). */
static int add_query(azf_value *v, const char *query)
{
    struct evkeyvalq q = {0};
    if (!query || !*query)
        return 0;
    /* A decoded NUL would cut the text short. */
    if (strstr(query, "%00") || evhttp_parse_query_str(query, &q) != 0)
        return AZF_E_PARSE;
    size_t n = 0, nf = 0;
    for (const struct evkeyval *h = q.tqh_first; h; h = h->next.tqe_next)
        n++;
    size_t nb = buckets_for(n), small_bucket[2 * SMALL], small_next[SMALL];
    const struct evkeyval *small_f[SMALL];
    const struct evkeyval **f = n <= SMALL ? small_f : azf__calloc(n, sizeof *f);
    size_t *bucket = nb <= 2 * SMALL ? small_bucket : azf__calloc(nb, sizeof *bucket);
    size_t *next = n <= SMALL ? small_next : azf__calloc(n, sizeof *next);
    int rc = f && bucket && next ? 0 : AZF_E_NOMEM;
    if (rc == 0)
        memset(bucket, 0, nb * sizeof *bucket);
    for (const struct evkeyval *h = q.tqh_first; rc == 0 && h; h = h->next.tqe_next) {
        if (!azf__utf8_valid(h->key) || !azf__utf8_valid(h->value)) {
            rc = AZF_E_PARSE;
            break;
        }
        if (!*h->value) /* the host drops empty query values */
            continue;
        size_t *at = &bucket[hash(h->key) & (nb - 1)];
        while (*at && strcmp(f[*at - 1]->key, h->key) != 0)
            at = &next[*at - 1];
        if (*at) {
            f[*at - 1] = h; /* the last value wins, at the first one's place */
        } else {
            f[nf] = h;
            next[nf] = 0;
            *at = ++nf;
        }
    }
    for (size_t i = 0; rc == 0 && i < nf; i++)
        rc = azf__http_append(v, AZF_HTTP_QUERY, f[i]->key, f[i]->value);
    if (f != small_f)
        azf__free(f);
    if (bucket != small_bucket)
        azf__free(bucket);
    if (next != small_next)
        azf__free(next);
    evhttp_clear_headers(&q);
    return rc;
}

/* The request as the host hands it to a worker (host-protocol.md §1.6, §10.6-10.7). */
int azf__request_value(runner *r, azf__http_req *req, const char *path, const char *query,
                       azf_value_map *route, azf_value **out)
{
    azf_value *v = NULL, *body = NULL;
    *out = NULL;
    if (azf_value_new_http(&v) != 0)
        return AZF_E_NOMEM;
    int rc = azf_value_http_set_method(v, azf__http_method_name(req));
    char *url = azf__asprintf("http://%s:%d%s%s%s", r->o->host, r->o->port, path, query ? "?" : "",
                              query ? query : "");
    rc = rc ? rc : url ? azf_value_http_set_url(v, url) : AZF_E_NOMEM;
    azf__free(url);
    if (rc == 0)
        rc = add_headers(v, &req->in_headers);
    if (rc == 0)
        rc = add_query(v, query);
    for (size_t i = 0; rc == 0 && route && i < azf_value_map_count(route); i++) {
        const char *k;
        const azf_value *rv = azf_value_map_at(route, i, &k);
        rc = azf_value_http_set(v, AZF_HTTP_PARAMS, k, azf_value_data(rv, NULL));
    }
    if (rc == 0 && (rc = azf__http_take_body(req, &body)) == 0 && body &&
        (rc = azf_value_http_set_body(v, body)) != 0)
        azf_value_free(body);
    if (rc != 0) {
        azf_value_free(v);
        return rc;
    }
    *out = v;
    return 0;
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
    /* Workers send unset attributes as empty strings (the official Python
     * worker does): an empty Domain or Path says nothing (RFC 6265 5.2). */
    if ((s = azf_cookie_domain(ck)) && *s)
        APPEND("; domain="), APPEND(s);
    if ((s = azf_cookie_path(ck)) && *s)
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

static void add_body(azf__http_req *req, const azf_value *body, int set_type)
{
    size_t n = 0;
    const void *d = azf_value_data(body, &n);
    struct evkeyvalq *h = &req->out_headers;
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
        evbuffer_add(req->out_body, d, n);
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

static void send_response(runner *r, call *c)
{
    azf__http_req *req = c->req;
    int st = azf_invocation_status(c->inv);
    if (st != AZF_INVOCATION_SUCCEEDED || c->binding_error) {
        azf__http_send(r, req, 500, "Internal Server Error");
        return;
    }
    const azf_value *out = http_output(c->inv);
    if (azf_value_kind(out) != AZF_VALUE_HTTP) {
        if (!out || azf_value_kind(out) == AZF_VALUE_NULL) {
            azf__http_send(r, req, 204, "No Content");
            return;
        }
        add_body(req, out, 1);
        azf__http_send(r, req, 200, "OK");
        return;
    }
    const char *sc = azf_value_http_status_code(out);
    char *end = NULL;
    long code = sc && *sc ? strtol(sc, &end, 10) : 200;
    if ((end && *end) || code < 100 || code > 999) {
        say(C_RED, "Function '%s' returned an invalid status code '%s'",
            azf_function_name(azf_invocation_function(c->inv)), sc);
        azf__http_send(r, req, 500, "Internal Server Error");
        return;
    }
    struct evkeyvalq *h = &req->out_headers;
    for (size_t i = 0; i < azf_value_http_count(out, AZF_HTTP_HEADERS); i++) {
        const char *v, *k = azf_value_http_entry(out, AZF_HTTP_HEADERS, i, &v);
        if (v && strcasecmp(k, "content-length") != 0 && strcasecmp(k, "transfer-encoding") != 0)
            evhttp_add_header(h, k, v);
    }
    for (size_t i = 0; i < azf_value_http_cookie_count(out); i++)
        add_cookie(h, azf_value_http_cookie(out, i));
    add_body(req, azf_value_http_body(out), 1);
    azf__http_send(r, req, (int)code, NULL);
}

void azf__call_orphaned(call *c)
{
    /* A client that left while its request was being served: the HTTP front frees the
     * request. */
    c->req = NULL;
}

static void finish(runner *r, call *c)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long ms =
        (now.tv_sec - c->started.tv_sec) * 1000 + (now.tv_nsec - c->started.tv_nsec) / 1000000;
    int st = azf_invocation_status(c->inv);
    if (c->binding_error && st != AZF_INVOCATION_FAILED && st != AZF_INVOCATION_CANCELLED)
        st = AZF_INVOCATION_FAILED; /* an input or output binding failed */
    const char *name = azf_function_name(azf_invocation_function(c->inv));
    char *undelivered = st == AZF_INVOCATION_SUCCEEDED ? azf__bindings_undelivered(c->inv) : NULL;
    if (undelivered) /* outputs to services that do not run locally */
        say(C_NONE, "%s", undelivered);
    azf__free(undelivered);
    const char *what = st == AZF_INVOCATION_SUCCEEDED   ? "Succeeded"
                       : st == AZF_INVOCATION_CANCELLED ? "Cancelled"
                                                        : "Failed";
    say(st == AZF_INVOCATION_SUCCEEDED ? C_GREEN : C_RED,
        "Executed 'Functions.%s' (%s, Id=%s, Duration=%ldms)", name, what,
        azf_invocation_id(c->inv), ms);
    if (st == AZF_INVOCATION_FAILED && c->binding_error) {
        say(C_RED, "System.Exception: Result: Failure\nException: %s", c->binding_error);
    } else if (st == AZF_INVOCATION_FAILED) {
        const char *stack = azf_invocation_error_stack(c->inv);
        say(C_RED, "System.Exception: Result: Failure\nException: %s%s%s",
            azf_invocation_error_message(c->inv), *stack ? "\nStack: " : "", stack);
    }
    azf__supervised_end(c->slot);
    if (c->req)
        send_response(r, c);
    if (c->settled)
        c->settled(st == AZF_INVOCATION_SUCCEEDED, c->settled_arg);
    azf_invocation_free(c->inv);
    azf__free(c->binding_error);
    azf__free(c);
    r->inflight--;
}

void azf__on_wake(evutil_socket_t fd, short what, void *arg)
{
    runner *r = arg;
    uint64_t n;
    (void)what;
    /* Read before taking the queue: a completion queued after this read finds the
     * queue empty again and writes again. */
    while (read(fd, &n, sizeof n) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&r->mu);
    call *c = r->done;
    r->done = NULL;
    pthread_mutex_unlock(&r->mu);
    while (c) {
        call *next = c->next;
        finish(r, c);
        c = next;
    }
    azf__maybe_exit(r);
}

void azf__drop_done(runner *r)
{
    for (call *c = r->done, *next; c; c = next) {
        next = c->next;
        if (c->settled)
            c->settled(azf_invocation_status(c->inv) == AZF_INVOCATION_SUCCEEDED &&
                           !c->binding_error,
                       c->settled_arg);
        azf_invocation_free(c->inv);
        azf__free(c->binding_error);
        azf__free(c);
    }
    r->done = NULL;
    for (posted *p = r->posted, *next; p; p = next) {
        next = p->next;
        azf_value_free(p->input);
        azf_value_map_free(p->metadata);
        p->settled(-1, p->arg);
        azf__free(p->reason);
        azf__free(p);
    }
    r->posted = NULL;
}
