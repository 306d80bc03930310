/* failmalloc over the public API: for each path, fail the Nth allocation made
 * through azf_set_allocator, for N = 1, 2, ... until the path succeeds without a
 * failure. Every run must end in 0 or a clean AZF_E_NOMEM (never another code,
 * never a crash) and leave no allocation live (counted here; ASan/LSan checks the
 * rest). */
#include "azf_test.h"

#include "azfunc/azfunc.h"

#include <stdlib.h>

static long g_count, g_fail_at, g_live;

static int failing(void)
{
    return g_fail_at && ++g_count == g_fail_at;
}

static void *t_malloc(size_t n, void *ud)
{
    (void)ud;
    if (failing())
        return NULL;
    void *p = malloc(n);
    g_live += p != NULL;
    return p;
}

static void *t_calloc(size_t a, size_t b, void *ud)
{
    (void)ud;
    if (failing())
        return NULL;
    void *p = calloc(a, b);
    g_live += p != NULL;
    return p;
}

static void *t_realloc(void *p, size_t n, void *ud)
{
    (void)ud;
    if (failing())
        return NULL;
    void *q = realloc(p, n);
    g_live += !p && q;
    return q;
}

static void t_free(void *p, void *ud)
{
    (void)ud;
    g_live -= p != NULL;
    free(p);
}

/* ---- the paths ----------------------------------------------------------- */

static int frame_reader_flow(void)
{
    static const uint8_t frames[] = {0, 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 0, 2, 'd', 'e'};
    azf_frame_reader *r;
    int rc = azf_frame_reader_new(&r, 1024);
    if (rc)
        return rc;
    size_t off = 0, used;
    int msgs = 0;
    /* one byte at a time: the reader must buffer partial frames */
    while (off < sizeof frames) {
        rc = azf_frame_reader_feed(r, frames + off, 1, &used);
        if (rc < 0)
            break;
        off += used;
        msgs += rc == 1;
        rc = 0;
    }
    azf_buf out = AZF_BUF_INIT;
    if (!rc)
        rc = azf_frame_append(&out, (const uint8_t *)"xyz", 3);
    azf_buf_dispose(&out);
    azf_frame_reader_free(r);
    return rc ? rc : msgs == 2 ? 0 : -1000;
}

static int message_flow(void)
{
    static const char json[] =
        "{\"requestId\": \"r\", \"invocationRequest\": {\"invocationId\": \"inv\", "
        "\"functionId\": \"fn\", \"inputData\": [{\"name\": \"req\", \"data\": {\"http\": "
        "{\"method\": \"GET\", \"url\": \"http://x/api/h\", \"headers\": {\"a\": \"b\"}, "
        "\"body\": {\"bytes\": \"aGVsbG8=\"}}}}], \"triggerMetadata\": {\"k\": {\"json\": "
        "\"[1]\"}}}}";
    azf_message *m = NULL, *back = NULL;
    azf_buf wire = AZF_BUF_INIT, frame = AZF_BUF_INIT, text = AZF_BUF_INIT;
    int rc;
    if ((rc = azf_message_new(&m)) || (rc = azf_message_from_json(m, json, sizeof json - 1)) ||
        (rc = azf_message_encode(m, &wire)) || (rc = azf_message_encode_frame(m, &frame)) ||
        (rc = azf_message_new(&back)) ||
        (rc = azf_message_decode(back, (const uint8_t *)wire.ptr, wire.size)) ||
        (rc = azf_message_to_json(back, &text)))
        goto out;
    if (azf_message_content_field(back) != 4)
        rc = -1004;
out:
    azf_buf_dispose(&wire);
    azf_buf_dispose(&frame);
    azf_buf_dispose(&text);
    azf_message_free(m);
    azf_message_free(back);
    return rc;
}

static int value_flow(void)
{
    azf_value *http = NULL, *body = NULL, *coll = NULL, *item = NULL, *copy = NULL;
    int rc;
    if ((rc = azf_value_new_http(&http)) || (rc = azf_value_http_set_method(http, "POST")) ||
        (rc = azf_value_http_set_url(http, "http://localhost/api/x?a=1")) ||
        (rc = azf_value_http_set(http, AZF_HTTP_HEADERS, "content-type", "text/plain")) ||
        (rc = azf_value_http_set(http, AZF_HTTP_QUERY, "a", "1")) ||
        (rc = azf_value_new_data(&body, AZF_VALUE_BYTES, "body", 4)) ||
        (rc = azf_value_http_set_body(http, body)))
        goto out;
    body = NULL;
    if ((rc = azf_value_new_collection(&coll, AZF_VALUE_COLLECTION_STRING)) ||
        (rc = azf_value_new_string(&item, "one")) || (rc = azf_value_collection_append(coll, item)))
        goto out;
    item = NULL;
    rc = azf_value_copy(&copy, http);
out:
    azf_value_free(http);
    azf_value_free(body);
    azf_value_free(coll);
    azf_value_free(item);
    azf_value_free(copy);
    return rc;
}

static int on_invoke(azf_invocation *inv, void *ud)
{
    (void)ud;
    azf_value *v;
    int rc = azf_value_new_string(&v, "hello");
    if (rc)
        return azf_invocation_fail(inv, "no memory", NULL);
    if ((rc = azf_invocation_set_return(inv, v)))
        return azf_invocation_fail(inv, "no memory", NULL);
    return azf_invocation_complete(inv);
}

static const char *HI_JSON =
    "{\"name\":\"hi\",\"bindings\":[{\"type\":\"httpTrigger\",\"direction\":\"in\","
    "\"name\":\"req\",\"route\":\"hi/{id:int}\"},{\"type\":\"http\",\"direction\":\"out\","
    "\"name\":\"$return\"}]}";

static int registry_flow(void)
{
    azf_registry *reg = NULL;
    azf_handler *h = NULL;
    azf_invocation *inv = NULL;
    azf_value *req = NULL;
    azf_value_map *params = NULL;
    const azf_function *fn = NULL;
    char app[4096];
    const char *src = getenv("AZF_SOURCE_DIR");
    snprintf(app, sizeof app, "%s/bench/apps/benchapp-v1", src ? src : ".");
    int rc;
    if ((rc = azf_registry_new(&reg)) || (rc = azf_handler_new(&h)) ||
        (rc = azf_handler_set_invoke(h, on_invoke)) ||
        (rc = azf_registry_add(reg, HI_JSON, h, NULL)))
        goto out;
    rc = azf_registry_load_v1(reg, app, h, NULL);
    if (rc < 0)
        goto out;
    if (rc != 8) {
        rc = -1001;
        goto out;
    }
    if ((rc = azf_registry_bind_id(reg, "echo", "id-echo")) ||
        (rc = azf_registry_match_route(reg, "GET", "hi/42", &fn, &params)) ||
        (rc = azf_invocation_new(&inv, fn, "inv-1")) || (rc = azf_value_new_http(&req)) ||
        (rc = azf_invocation_set_input(inv, "req", req)))
        goto out;
    req = NULL;
    if ((rc = azf_invocation_start(inv)))
        goto out;
    int st = azf_invocation_status(inv);
    if (st == AZF_INVOCATION_FAILED)
        rc = AZF_E_NOMEM; /* the handler's own allocation failed: a clean failure */
    else if (st != AZF_INVOCATION_SUCCEEDED || !azf_invocation_return_value(inv))
        rc = -1002;
out:
    azf_value_free(req);
    azf_value_map_free(params);
    azf_invocation_free(inv);
    azf_handler_free(h);
    azf_registry_free(reg);
    return rc;
}

static int worker_opts_flow(void)
{
    static const char *const argv[] = {"azfunc-worker",
                                       "--host",
                                       "127.0.0.1",
                                       "--port",
                                       "7071",
                                       "--workerId",
                                       "w-1",
                                       "--requestId",
                                       "r-1",
                                       "--grpcMaxMessageLength",
                                       "2147483647",
                                       "--functions-uri",
                                       "http://127.0.0.1:7071/",
                                       "--functions-worker-id",
                                       "w-1",
                                       "--functions-request-id",
                                       "r-1",
                                       "--functions-grpc-max-message-length",
                                       "2147483647",
                                       "--unknown-flag"};
    azf_worker_opts *o;
    int rc = azf_worker_opts_new(&o);
    if (rc)
        return rc;
    rc = azf_worker_opts_from_args(o, (int)(sizeof argv / sizeof argv[0]), argv);
    azf_worker_opts_free(o);
    return rc;
}

static int got_message;

static int on_msg(uint64_t stream, const uint8_t *m, size_t len, void *ud)
{
    (void)stream, (void)m, (void)ud;
    got_message += len == 5;
    return 0;
}

/* Moves every pending byte of `from` into `to`. */
static int pump(azf_session *from, azf_session *to)
{
    const uint8_t *p;
    size_t n;
    int rc;
    while ((rc = azf_session_output(from, &p, &n)) == 0 && n)
        if ((rc = azf_session_recv(to, p, n)))
            return rc;
    return rc;
}

static int session_flow(void)
{
    azf_transport_opts *o = NULL;
    azf_transport_callbacks *cbs = NULL;
    azf_session *c = NULL, *s = NULL;
    azf_buf m = AZF_BUF_INIT;
    uint64_t st;
    got_message = 0;
    int rc;
    if ((rc = azf_transport_opts_new(&o)) || (rc = azf_transport_callbacks_new(&cbs)) ||
        (rc = azf_transport_callbacks_set_on_message(cbs, on_msg)) ||
        (rc = azf_session_new(&c, AZF_ROLE_CLIENT, o, NULL, NULL)) ||
        (rc = azf_session_new(&s, AZF_ROLE_SERVER, o, cbs, NULL)) ||
        (rc = azf_session_open_stream(c, NULL, 0, &st)) || (rc = azf_buf_set(&m, "hello", 5)) ||
        (rc = azf_session_send(c, st, &m)) || (rc = pump(c, s)) || (rc = pump(s, c)) ||
        (rc = pump(c, s)))
        goto out;
    if (got_message != 1)
        rc = -1003;
out:
    azf_buf_dispose(&m);
    azf_session_free(c);
    azf_session_free(s);
    azf_transport_callbacks_free(cbs);
    azf_transport_opts_free(o);
    return rc;
}

/* ---- the driver loop ----------------------------------------------------- */

static void fail_each(const char *name, int (*flow)(void))
{
    g_fail_at = 0;
    g_live = 0;
    CHECK_INT(flow(), 0);
    CHECK_INT(g_live, 0);
    long n, nomem = 0;
    for (n = 1; n < 100000; n++) {
        g_count = 0;
        g_fail_at = n;
        g_live = 0;
        int rc = flow();
        if (rc != 0 && rc != AZF_E_NOMEM)
            fprintf(stderr, "%s: allocation %ld failing gave %d (%s)\n", name, n, rc,
                    azf_strerror(rc));
        if (g_live != 0)
            fprintf(stderr, "%s: leak with allocation %ld failing: %ld live\n", name, n, g_live);
        CHECK(rc == 0 || rc == AZF_E_NOMEM);
        CHECK_INT(g_live, 0);
        nomem += rc == AZF_E_NOMEM;
        if (g_count < n) /* no allocation failed: the path is fully covered */
            break;
    }
    g_fail_at = 0;
    fprintf(stderr, "%s: %ld allocations, %ld clean AZF_E_NOMEM\n", name, n - 1, nomem);
    CHECK(n > 1);
    CHECK(nomem > 0);
}

int main(void)
{
    azf_mem m = {NULL, t_malloc, t_free, t_calloc, t_realloc};
    CHECK_INT(azf_set_allocator(&m), 0);
    CHECK(azf_global_init() > 0);
    fail_each("frame reader", frame_reader_flow);
    fail_each("message json/encode/decode", message_flow);
    fail_each("value builders", value_flow);
    fail_each("registry add/load_v1/invocation", registry_flow);
    fail_each("worker opts", worker_opts_flow);
    fail_each("session create + feed", session_flow);
    azf_global_shutdown();
    CHECK_INT(azf_set_allocator(NULL), 0);
    TEST_MAIN_END();
}
