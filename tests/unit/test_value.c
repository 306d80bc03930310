/* Tests of the marshal layer: every value kind, the TypedData round trip through
 * protobuf-c pack/unpack, nullable http fields, refused output kinds, allocation failures. */
#include "azf_test.h"
#include "marshal/marshal_pb.h"

#include <float.h>
#include <stdlib.h>

/* ---- a counting, failing allocator ---------------------------------------------- */

static long g_live, g_count, g_fail_at;

static void *t_malloc(size_t n, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count >= g_fail_at)
        return NULL;
    void *p = malloc(n);
    if (p)
        g_live++;
    return p;
}
static void t_free(void *p, void *ud)
{
    (void)ud;
    if (p)
        g_live--;
    free(p);
}
static void *t_calloc(size_t n, size_t s, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count >= g_fail_at)
        return NULL;
    void *p = calloc(n, s);
    if (p)
        g_live++;
    return p;
}
static void *t_realloc(void *p, size_t s, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count >= g_fail_at)
        return NULL;
    void *q = realloc(p, s);
    if (q && !p)
        g_live++;
    return q;
}

/* ---- deep comparison through the public accessors --------------------------------- */

static int str_eq(const char *a, const char *b)
{
    if (!a || !b)
        return a == b;
    return strcmp(a, b) == 0;
}

static int value_eq(const azf_value *a, const azf_value *b);

static int http_eq(const azf_value *a, const azf_value *b)
{
    if (!str_eq(azf_value_http_method(a), azf_value_http_method(b)) ||
        !str_eq(azf_value_http_url(a), azf_value_http_url(b)) ||
        !str_eq(azf_value_http_status_code(a), azf_value_http_status_code(b)) ||
        azf_value_http_content_negotiation(a) != azf_value_http_content_negotiation(b))
        return 0;
    for (int m = AZF_HTTP_HEADERS; m <= AZF_HTTP_PARAMS; m++) {
        if (azf_value_http_count(a, m) != azf_value_http_count(b, m))
            return 0;
        for (size_t i = 0; i < azf_value_http_count(a, m); i++) {
            const char *va, *vb;
            if (!str_eq(azf_value_http_entry(a, m, i, &va), azf_value_http_entry(b, m, i, &vb)) ||
                !str_eq(va, vb))
                return 0;
        }
    }
    const azf_value *ba = azf_value_http_body(a), *bb = azf_value_http_body(b);
    if ((ba == NULL) != (bb == NULL) || (ba && !value_eq(ba, bb)))
        return 0;
    if (azf_value_http_cookie_count(a) != azf_value_http_cookie_count(b))
        return 0;
    for (size_t i = 0; i < azf_value_http_cookie_count(a); i++) {
        const azf_cookie *x = azf_value_http_cookie(a, i), *y = azf_value_http_cookie(b, i);
        int64_t s1 = 0, s2 = 0;
        int32_t n1 = 0, n2 = 0;
        double m1 = 0, m2 = 0;
        if (!str_eq(azf_cookie_name(x), azf_cookie_name(y)) ||
            !str_eq(azf_cookie_value(x), azf_cookie_value(y)) ||
            !str_eq(azf_cookie_domain(x), azf_cookie_domain(y)) ||
            !str_eq(azf_cookie_path(x), azf_cookie_path(y)) ||
            azf_cookie_expires(x, &s1, &n1) != azf_cookie_expires(y, &s2, &n2) || s1 != s2 ||
            n1 != n2 || azf_cookie_secure(x) != azf_cookie_secure(y) ||
            azf_cookie_http_only(x) != azf_cookie_http_only(y) ||
            azf_cookie_same_site(x) != azf_cookie_same_site(y) ||
            azf_cookie_max_age(x, &m1) != azf_cookie_max_age(y, &m2) || m1 != m2)
            return 0;
    }
    if (azf_value_http_identity_count(a) != azf_value_http_identity_count(b))
        return 0;
    for (size_t i = 0; i < azf_value_http_identity_count(a); i++) {
        const char *a1, *a2, *a3, *b1, *b2, *b3;
        azf_value_http_identity(a, i, &a1, &a2, &a3);
        azf_value_http_identity(b, i, &b1, &b2, &b3);
        if (!str_eq(a1, b1) || !str_eq(a2, b2) || !str_eq(a3, b3) ||
            azf_value_http_claim_count(a, i) != azf_value_http_claim_count(b, i))
            return 0;
        for (size_t j = 0; j < azf_value_http_claim_count(a, i); j++) {
            const char *t1, *v1, *t2, *v2;
            azf_value_http_claim(a, i, j, &t1, &v1);
            azf_value_http_claim(b, i, j, &t2, &v2);
            if (!str_eq(t1, t2) || !str_eq(v1, v2))
                return 0;
        }
    }
    return 1;
}

static int value_eq(const azf_value *a, const azf_value *b)
{
    int k = azf_value_kind(a);
    if (k != azf_value_kind(b))
        return 0;
    size_t la, lb;
    const void *da, *db;
    switch (k) {
    case AZF_VALUE_NULL:
        return 1;
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM:
        da = azf_value_data(a, &la);
        db = azf_value_data(b, &lb);
        return la == lb && memcmp(da, db, la) == 0;
    case AZF_VALUE_INT:
        return azf_value_int(a) == azf_value_int(b);
    case AZF_VALUE_DOUBLE:
        return azf_value_double(a) == azf_value_double(b);
    case AZF_VALUE_HTTP:
        return http_eq(a, b);
    case AZF_VALUE_MODEL_BINDING_DATA:
        da = azf_value_model_content(a, &la);
        db = azf_value_model_content(b, &lb);
        return str_eq(azf_value_model_version(a), azf_value_model_version(b)) &&
               str_eq(azf_value_model_source(a), azf_value_model_source(b)) &&
               str_eq(azf_value_model_content_type(a), azf_value_model_content_type(b)) &&
               la == lb && memcmp(da, db, la) == 0;
    default:
        if (azf_value_count(a) != azf_value_count(b))
            return 0;
        for (size_t i = 0; i < azf_value_count(a); i++)
            if (!value_eq(azf_value_item(a, i), azf_value_item(b, i)))
                return 0;
        return 1;
    }
}

/* Encodes, packs, unpacks and decodes v; returns the decoded value (copy mode, or
 * borrow mode when borrow is set: then *msg keeps the unpacked message alive). */
static azf_value *round_trip(const azf_value *v, int flags, int borrow, azf__pb_typed_data **msg)
{
    azf__pb_typed_data td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    azf__errmsg err;
    if (azf__value_to_pb(v, &td, flags, &err) != 0)
        return NULL;
    size_t n = azure_functions_rpc_messages__typed_data__get_packed_size(&td);
    uint8_t *buf = malloc(n ? n : 1);
    azure_functions_rpc_messages__typed_data__pack(&td, buf);
    azf__pb_typed_data_clear(&td);
    azf__pb_typed_data *u = azure_functions_rpc_messages__typed_data__unpack(NULL, n, buf);
    free(buf);
    if (!u)
        return NULL;
    azf_value *out = NULL;
    int rc = azf__value_from_pb(&out, u, borrow ? AZF__MARSHAL_BORROW : 0, &err);
    if (borrow)
        *msg = u;
    else
        azure_functions_rpc_messages__typed_data__free_unpacked(u, NULL);
    return rc ? NULL : out;
}

static void check_round_trip(const azf_value *v, int flags)
{
    for (int borrow = 0; borrow < 2; borrow++) {
        azf__pb_typed_data *msg = NULL;
        azf_value *back = round_trip(v, flags, borrow, &msg);
        CHECK(back != NULL);
        CHECK(value_eq(v, back));
        azf_value_free(back); /* before the message it borrows from */
        if (msg)
            azure_functions_rpc_messages__typed_data__free_unpacked(msg, NULL);
    }
}

static int g_released;
static void release_cb(void *data, void *ud)
{
    (void)data;
    g_released += *(int *)ud;
}

static void release_null(void *data, void *ud)
{
    if (data == NULL)
        g_released += *(int *)ud;
}

static void test_scalars(void)
{
    azf_value *v;
    CHECK_INT(azf_value_new_null(&v), 0);
    CHECK_INT(azf_value_kind(v), AZF_VALUE_NULL);
    check_round_trip(v, 0);
    azf_value_free(v);
    CHECK_INT(azf_value_kind(NULL), AZF_VALUE_NULL);

    CHECK_INT(azf_value_new_string(&v, "héllo"), 0);
    size_t len;
    CHECK_STR(azf_value_data(v, &len), "héllo");
    CHECK_INT(len, 6);
    check_round_trip(v, AZF__MARSHAL_OUTPUT);
    azf_value_free(v);

    CHECK_INT(azf_value_new_data(&v, AZF_VALUE_JSON, "{\"a\":1}", 7), 0);
    CHECK_STR(azf_value_kind_name(azf_value_kind(v)), "json");
    check_round_trip(v, AZF__MARSHAL_OUTPUT);
    azf_value_free(v);

    static const char bin[] = {0, 1, 2, (char)0xff, 0};
    CHECK_INT(azf_value_new_data(&v, AZF_VALUE_BYTES, bin, sizeof bin), 0);
    const char *d = azf_value_data(v, &len);
    CHECK_INT(len, 5);
    CHECK(memcmp(d, bin, 5) == 0);
    check_round_trip(v, AZF__MARSHAL_OUTPUT);
    azf_value_free(v);

    CHECK_INT(azf_value_new_data(&v, AZF_VALUE_STREAM, NULL, 0), 0);
    CHECK_INT(azf_value_kind(v), AZF_VALUE_STREAM);
    check_round_trip(v, AZF__MARSHAL_OUTPUT);
    azf_value_free(v);

    /* Adopted data: no copy, released exactly once with the value. */
    static char text[] = "adopted";
    int one = 1;
    g_released = 0;
    CHECK_INT(azf_value_adopt_data(&v, AZF_VALUE_STRING, text, 7, release_cb, &one), 0);
    CHECK(azf_value_data(v, NULL) == (const void *)text);
    azf_value *copy;
    CHECK_INT(azf_value_copy(&copy, v), 0);
    CHECK(azf_value_data(copy, NULL) != (const void *)text);
    CHECK(value_eq(v, copy));
    azf_value_free(v);
    CHECK_INT(g_released, 1);
    azf_value_free(copy);
    CHECK_INT(g_released, 1);
    /* A text value must be NUL-terminated; refusing it does not release it. */
    CHECK_INT(azf_value_adopt_data(&v, AZF_VALUE_STRING, text, 3, release_cb, &one), AZF_E_INVALID);
    CHECK_INT(g_released, 1);
    CHECK_INT(azf_value_adopt_data(&v, AZF_VALUE_BYTES, text, 3, NULL, NULL), 0);
    azf_value_free(v);
    /* Empty adopted bytes: release still gets the caller's own pointer (NULL here). */
    g_released = 0;
    CHECK_INT(azf_value_adopt_data(&v, AZF_VALUE_BYTES, NULL, 0, release_null, &one), 0);
    CHECK_INT(azf_value_data(v, &len) != NULL, 1);
    CHECK_INT(len, 0);
    azf_value_free(v);
    CHECK_INT(g_released, 1);
    CHECK_INT(azf_value_new_data(&v, AZF_VALUE_INT, "x", 1), AZF_E_INVALID);
    CHECK_INT(azf_value_new_data(NULL, AZF_VALUE_STRING, "x", 1), AZF_E_INVALID);

    /* Integers: negative and extreme values survive the ZigZag encoding. */
    const int64_t ints[] = {0, 1, -1, 42, -42, INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        CHECK_INT(azf_value_new_int(&v, ints[i]), 0);
        CHECK(azf_value_int(v) == ints[i]);
        check_round_trip(v, AZF__MARSHAL_OUTPUT);
        azf_value_free(v);
    }
    /* On the wire, int is sint64: -1 is field 6, varint, ZigZag 1. */
    azf__pb_typed_data td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    azf_value_new_int(&v, -1);
    CHECK_INT(azf__value_to_pb(v, &td, AZF__MARSHAL_OUTPUT, NULL), 0);
    uint8_t wire[16];
    size_t n = azure_functions_rpc_messages__typed_data__pack(&td, wire);
    CHECK_INT(n, 2);
    CHECK_INT(wire[0], 0x30);
    CHECK_INT(wire[1], 0x01);
    azf__pb_typed_data_clear(&td);
    azf_value_free(v);

    const double dbls[] = {0.0, -1.5, 4.34, DBL_MAX, -DBL_MIN};
    for (size_t i = 0; i < sizeof dbls / sizeof dbls[0]; i++) {
        CHECK_INT(azf_value_new_double(&v, dbls[i]), 0);
        CHECK(azf_value_double(v) == dbls[i]);
        check_round_trip(v, AZF__MARSHAL_OUTPUT);
        azf_value_free(v);
    }
    /* Accessors of the wrong kind read as empty. */
    azf_value_new_double(&v, 2.5);
    CHECK(azf_value_int(v) == 0);
    CHECK(azf_value_data(v, &len) == NULL && len == 0);
    CHECK_INT(azf_value_count(v), 0);
    azf_value_free(v);
}

static void test_collections(void)
{
    azf_value *c, *item;
    CHECK_INT(azf_value_new_collection(&c, AZF_VALUE_STRING), AZF_E_INVALID);

    CHECK_INT(azf_value_new_collection(&c, AZF_VALUE_COLLECTION_STRING), 0);
    const char *words[] = {"a", "", "ccc"};
    for (int i = 0; i < 3; i++) {
        azf_value_new_string(&item, words[i]);
        CHECK_INT(azf_value_collection_append(c, item), 0);
    }
    azf_value_new_int(&item, 5);
    CHECK_INT(azf_value_collection_append(c, item), AZF_E_INVALID); /* still ours */
    azf_value_free(item);
    CHECK_INT(azf_value_count(c), 3);
    CHECK_STR(azf_value_data(azf_value_item(c, 2), NULL), "ccc");
    CHECK(azf_value_item(c, 3) == NULL);
    check_round_trip(c, 0);
    azf_value_free(c);

    azf_value_new_collection(&c, AZF_VALUE_COLLECTION_BYTES);
    azf_value_new_data(&item, AZF_VALUE_BYTES, "\0\1", 2);
    azf_value_collection_append(c, item);
    azf_value_new_data(&item, AZF_VALUE_BYTES, "", 0);
    azf_value_collection_append(c, item);
    check_round_trip(c, 0);
    azf_value_free(c);

    azf_value_new_collection(&c, AZF_VALUE_COLLECTION_DOUBLE);
    for (int i = 0; i < 5; i++) {
        azf_value_new_double(&item, i * -0.5);
        azf_value_collection_append(c, item);
    }
    check_round_trip(c, 0);
    azf_value_free(c);

    azf_value_new_collection(&c, AZF_VALUE_COLLECTION_SINT64);
    const int64_t ints[] = {-1, 0, 1, INT64_MIN, INT64_MAX, -300};
    for (int i = 0; i < 6; i++) {
        azf_value_new_int(&item, ints[i]);
        azf_value_collection_append(c, item);
    }
    check_round_trip(c, 0);
    CHECK(azf_value_int(azf_value_item(c, 3)) == INT64_MIN);
    azf_value_free(c);

    /* An empty collection stays a collection of its kind. */
    azf_value_new_collection(&c, AZF_VALUE_COLLECTION_SINT64);
    check_round_trip(c, 0);
    azf_value_free(c);

    azf_value *m;
    CHECK_INT(azf_value_new_model_binding_data(&m, "1.0", "AzureStorageBlobs", "application/json",
                                               "{\"BlobName\":\"x\"}", 16),
              0);
    CHECK_STR(azf_value_model_source(m), "AzureStorageBlobs");
    size_t len;
    CHECK(memcmp(azf_value_model_content(m, &len), "{\"BlobName\":\"x\"}", 16) == 0);
    CHECK_INT(len, 16);
    check_round_trip(m, 0);
    azf_value_new_collection(&c, AZF_VALUE_COLLECTION_MODEL_BINDING_DATA);
    CHECK_INT(azf_value_collection_append(c, m), 0);
    azf_value_new_model_binding_data(&m, NULL, NULL, NULL, NULL, 0);
    CHECK_STR(azf_value_model_version(m), "");
    CHECK_INT(azf_value_collection_append(c, m), 0);
    check_round_trip(c, 0);

    /* The host accepts none of these as outputs. */
    azf__pb_typed_data td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    azf__errmsg err;
    CHECK_INT(azf__value_to_pb(c, &td, AZF__MARSHAL_OUTPUT, &err), AZF_E_UNSUPPORTED);
    CHECK_STR(err.text, "a collection_model_binding_data value cannot be an output: the host "
                        "accepts only string, json, bytes, stream, http, int and double");
    CHECK_INT(td.data_case, AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA__NOT_SET);
    CHECK_INT(azf__value_to_pb(azf_value_item(c, 0), &td, AZF__MARSHAL_OUTPUT, &err),
              AZF_E_UNSUPPORTED);
    for (int k = AZF_VALUE_COLLECTION_BYTES; k <= AZF_VALUE_COLLECTION_MODEL_BINDING_DATA; k++)
        CHECK(!azf_value_kind_is_output(k));
    for (int k = AZF_VALUE_NULL; k <= AZF_VALUE_DOUBLE; k++)
        CHECK(azf_value_kind_is_output(k));
    azf_value_free(c);
}

static azf_value *make_http(void)
{
    azf_value *h, *body;
    azf_value_new_http(&h);
    azf_value_http_set_method(h, "POST");
    azf_value_http_set_url(h, "https://localhost/api/x?a=1&b=");
    azf_value_http_set_status_code(h, "201");
    azf_value_http_set_content_negotiation(h, 1);
    azf_value_http_set(h, AZF_HTTP_HEADERS, "content-type", "application/json");
    azf_value_http_set(h, AZF_HTTP_HEADERS, "x-empty", "");
    azf_value_http_set(h, AZF_HTTP_QUERY, "a", "1");
    azf_value_http_set(h, AZF_HTTP_QUERY, "b", NULL);
    azf_value_http_set(h, AZF_HTTP_PARAMS, "id", "42");
    azf_value_new_data(&body, AZF_VALUE_BYTES, "{\"k\":true}", 10);
    azf_value_http_set_body(h, body);
    azf_cookie *c;
    azf_cookie_new(&c, "session", "abc");
    azf_cookie_set_domain(c, "example.com");
    azf_cookie_set_expires(c, 1700000000, 500);
    azf_cookie_set_secure(c, 1);
    azf_cookie_set_http_only(c, 0);
    azf_cookie_set_same_site(c, AZF_SAME_SITE_NONE);
    azf_cookie_set_max_age(c, 3600.5);
    azf_value_http_add_cookie(h, c);
    azf_cookie_new(&c, "plain", ""); /* every optional field null */
    azf_value_http_add_cookie(h, c);
    int id = azf_value_http_add_identity(h, "aad", NULL, "roles");
    azf_value_http_add_claim(h, (size_t)id, "name", "alice");
    azf_value_http_add_claim(h, (size_t)id, "roles", "admin");
    azf_value_http_add_identity(h, NULL, NULL, NULL);
    return h;
}

static void test_http(void)
{
    azf_value *h = make_http();
    const char *v = "unset";
    CHECK_INT(azf_value_http_get(h, AZF_HTTP_HEADERS, "Content-Type", &v), 1);
    CHECK_STR(v, "application/json");
    CHECK_INT(azf_value_http_get(h, AZF_HTTP_QUERY, "b", &v), 1);
    CHECK(v == NULL);
    CHECK_INT(azf_value_http_get(h, AZF_HTTP_QUERY, "B", &v), 0);
    CHECK_INT(azf_value_http_get(h, 7, "x", &v), AZF_E_INVALID);
    /* Setting an existing header replaces it, whatever its case. */
    CHECK_INT(azf_value_http_set(h, AZF_HTTP_HEADERS, "CONTENT-TYPE", "text/plain"), 0);
    CHECK_INT(azf_value_http_count(h, AZF_HTTP_HEADERS), 2);
    azf_value_http_get(h, AZF_HTTP_HEADERS, "content-type", &v);
    CHECK_STR(v, "text/plain");
    const azf_cookie *c = azf_value_http_cookie(h, 0);
    int64_t s;
    int32_t ns;
    double age;
    CHECK_INT(azf_cookie_expires(c, &s, &ns), 1);
    CHECK(s == 1700000000 && ns == 500);
    CHECK_INT(azf_cookie_secure(c), 1);
    CHECK_INT(azf_cookie_http_only(c), 0);
    CHECK_INT(azf_cookie_max_age(c, &age), 1);
    c = azf_value_http_cookie(h, 1);
    CHECK(azf_cookie_domain(c) == NULL && azf_cookie_path(c) == NULL);
    CHECK_INT(azf_cookie_expires(c, NULL, NULL), 0);
    CHECK_INT(azf_cookie_secure(c), -1);
    CHECK_INT(azf_cookie_max_age(c, NULL), 0);
    CHECK_INT(azf_cookie_same_site(c), AZF_SAME_SITE_UNSET);
    CHECK_INT(azf_cookie_set_same_site((azf_cookie *)c, 9), AZF_E_INVALID);

    /* Nullable maps keep null values; copies are deep. */
    check_round_trip(h, AZF__MARSHAL_NULLABLE);
    check_round_trip(h, AZF__MARSHAL_OUTPUT | AZF__MARSHAL_NULLABLE);
    azf_value *copy;
    CHECK_INT(azf_value_copy(&copy, h), 0);
    CHECK(value_eq(h, copy));
    azf_value_free(copy);

    /* Plain maps send a null value as "". */
    azf__pb_typed_data *msg = NULL;
    azf_value *back = round_trip(h, AZF__MARSHAL_OUTPUT, 0, &msg);
    CHECK(back != NULL);
    CHECK_INT(azf_value_http_get(back, AZF_HTTP_QUERY, "b", &v), 1);
    CHECK_STR(v, "");
    CHECK_STR(azf_value_http_status_code(back), "201");
    CHECK_INT(azf_value_kind(azf_value_http_body(back)), AZF_VALUE_BYTES);
    azf_value_free(back);

    /* A body the host cannot take is refused with the http output. */
    azf_value *coll;
    azf_value_new_collection(&coll, AZF_VALUE_COLLECTION_STRING);
    azf_value_http_set_body(h, coll);
    azf__pb_typed_data td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    CHECK_INT(azf__value_to_pb(h, &td, AZF__MARSHAL_OUTPUT, NULL), AZF_E_UNSUPPORTED);
    CHECK_INT(td.data_case, AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA__NOT_SET);
    azf_value_free(h);
}

/* The host's nullable request shape decodes into the same map API. */
static void test_decode_nullable_request(void)
{
    AzureFunctionsRpcMessages__NullableString ns =
        AZURE_FUNCTIONS_RPC_MESSAGES__NULLABLE_STRING__INIT;
    ns.string_case = AZURE_FUNCTIONS_RPC_MESSAGES__NULLABLE_STRING__STRING_VALUE;
    ns.value = "v";
    AzureFunctionsRpcMessages__RpcHttp__NullableQueryEntry q1 =
        AZURE_FUNCTIONS_RPC_MESSAGES__RPC_HTTP__NULLABLE_QUERY_ENTRY__INIT;
    AzureFunctionsRpcMessages__RpcHttp__NullableQueryEntry q2 =
        AZURE_FUNCTIONS_RPC_MESSAGES__RPC_HTTP__NULLABLE_QUERY_ENTRY__INIT;
    q1.key = "set";
    q1.value = &ns;
    q2.key = "empty"; /* no value message: null */
    AzureFunctionsRpcMessages__RpcHttp__NullableQueryEntry *qs[] = {&q1, &q2};
    AzureFunctionsRpcMessages__RpcHttp__QueryEntry plain =
        AZURE_FUNCTIONS_RPC_MESSAGES__RPC_HTTP__QUERY_ENTRY__INIT;
    plain.key = "ignored";
    AzureFunctionsRpcMessages__RpcHttp__QueryEntry *ps[] = {&plain};
    AzureFunctionsRpcMessages__RpcHttp http = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_HTTP__INIT;
    http.method = "GET";
    http.n_nullable_query = 2;
    http.nullable_query = qs;
    http.n_query = 1;
    http.query = ps;
    azf__pb_typed_data td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    td.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_HTTP;
    td.http = &http;
    azf_value *v;
    CHECK_INT(azf__value_from_pb(&v, &td, 0, NULL), 0);
    CHECK_INT(azf_value_http_count(v, AZF_HTTP_QUERY), 2);
    const char *val = "x";
    CHECK_INT(azf_value_http_get(v, AZF_HTTP_QUERY, "empty", &val), 1);
    CHECK(val == NULL);
    CHECK_INT(azf_value_http_get(v, AZF_HTTP_QUERY, "ignored", &val), 0);
    CHECK(azf_value_http_body(v) == NULL);
    CHECK(azf_value_http_url(v) == NULL); /* "" on the wire means unset */
    azf_value_free(v);

    /* A member number from a newer protocol is a clear error, not a crash. */
    td.data_case = (AzureFunctionsRpcMessages__TypedData__DataCase)99;
    azf__errmsg err;
    CHECK_INT(azf__value_from_pb(&v, &td, 0, &err), AZF_E_PARSE);
    CHECK_STR(err.text, "TypedData member 99 is not known");
}

static void test_map(void)
{
    azf_value_map *m;
    azf_value *a, *b;
    CHECK_INT(azf_value_map_new(&m), 0);
    azf_value_new_string(&a, "1");
    azf_value_new_int(&b, 2);
    CHECK_INT(azf_value_map_set(m, "k", a), 0);
    CHECK_INT(azf_value_map_set(m, "k", b), 0); /* replaces and frees "1" */
    CHECK_INT(azf_value_map_count(m), 1);
    CHECK(azf_value_int(azf_value_map_get(m, "k")) == 2);
    CHECK(azf_value_map_get(m, "K") == NULL);
    const char *key;
    CHECK(azf_value_map_at(m, 0, &key) == b);
    CHECK_STR(key, "k");
    CHECK(azf_value_map_at(m, 1, &key) == NULL);
    CHECK_INT(azf_value_map_set(m, NULL, b), AZF_E_INVALID);
    azf_value_map_free(m);
    azf_value_map_free(NULL);
    azf_value_free(NULL);
}

/* A large map (the index past the first few entries): insertion order, replacement,
 * hits and misses; 200,000 entries take seconds with a linear lookup per insert. */
static void test_map_large(void)
{
    enum { N = 200000 };
    azf_value_map *m;
    char key[32];
    CHECK_INT(azf_value_map_new(&m), 0);
    for (int i = 0; i < N; i++) {
        azf_value *v;
        snprintf(key, sizeof key, "k%d", i);
        CHECK_INT(azf_value_new_int(&v, i), 0);
        CHECK_INT(azf_value_map_set(m, key, v), 0);
    }
    for (int i = 0; i < N; i += 3) { /* replaced in place: order and count unchanged */
        azf_value *v;
        snprintf(key, sizeof key, "k%d", i);
        CHECK_INT(azf_value_new_int(&v, -i), 0);
        CHECK_INT(azf_value_map_set(m, key, v), 0);
    }
    CHECK_INT(azf_value_map_count(m), N);
    int bad = 0;
    for (int i = 0; i < N; i++) {
        const char *k;
        snprintf(key, sizeof key, "k%d", i);
        const azf_value *v = azf_value_map_at(m, (size_t)i, &k);
        bad += !v || strcmp(k, key) != 0 || azf_value_map_get(m, key) != v ||
               azf_value_int(v) != (i % 3 ? i : -i);
        snprintf(key, sizeof key, "x%d", i);
        bad += azf_value_map_get(m, key) != NULL;
    }
    CHECK_INT(bad, 0);
    azf_value_map_free(m);

    /* Allocation failures while the map and its index grow: NOMEM, nothing lost. */
    azf_mem mem = {NULL, t_malloc, t_free, t_calloc, t_realloc};
    CHECK_INT(azf_set_allocator(&mem), 0);
    for (long n = 1; n < 200; n++) {
        g_fail_at = 0;
        g_live = 0;
        CHECK_INT(azf_value_map_new(&m), 0);
        g_count = 0;
        g_fail_at = n;
        int i = 0, rc = 0;
        for (; i < 40 && !rc; i++) {
            azf_value *v;
            snprintf(key, sizeof key, "k%d", i);
            if (!(rc = azf_value_new_int(&v, i)) && (rc = azf_value_map_set(m, key, v)))
                azf_value_free(v);
        }
        CHECK(rc == 0 || rc == AZF_E_NOMEM);
        size_t kept = azf_value_map_count(m);
        CHECK(kept == (size_t)(rc ? i - 1 : i));
        for (size_t k = 0; k < kept; k++) {
            snprintf(key, sizeof key, "k%zu", k);
            CHECK(azf_value_int(azf_value_map_get(m, key)) == (int64_t)k);
        }
        g_fail_at = 0;
        azf_value_map_free(m);
        CHECK_INT(g_live, 0);
    }
    CHECK_INT(azf_set_allocator(NULL), 0);
}

/* Builds, encodes and decodes everything with the Nth allocation failing: every step
 * either works or says AZF_E_NOMEM, and nothing leaks. */
static int build_all(void)
{
    int rc = 0;
    azf_value *h = NULL, *c = NULL, *item = NULL, *back = NULL, *copy = NULL;
    azf_cookie *ck = NULL;
    azf__pb_typed_data td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    if ((rc = azf_value_new_http(&h)) || (rc = azf_value_http_set_method(h, "GET")) ||
        (rc = azf_value_http_set(h, AZF_HTTP_HEADERS, "a", "b")) ||
        (rc = azf_value_http_set(h, AZF_HTTP_QUERY, "q", NULL)) ||
        (rc = azf_cookie_new(&ck, "n", "v")) || (rc = azf_cookie_set_path(ck, "/")) ||
        (rc = azf_cookie_set_secure(ck, 1)) || (rc = azf_cookie_set_expires(ck, 1, 2)))
        goto out;
    if ((rc = azf_value_http_add_cookie(h, ck)))
        goto out;
    ck = NULL;
    if ((rc = azf_value_http_add_identity(h, "t", NULL, "r")) < 0 ||
        (rc = azf_value_http_add_claim(h, 0, "x", "y")) ||
        (rc = azf_value_new_data(&item, AZF_VALUE_BYTES, "body", 4)) ||
        (rc = azf_value_http_set_body(h, item)))
        goto out;
    item = NULL;
    if ((rc = azf_value_copy(&copy, h)))
        goto out;
    if ((rc = azf__value_to_pb(h, &td, AZF__MARSHAL_NULLABLE, NULL)) ||
        (rc = azf__value_from_pb(&back, &td, 0, NULL)))
        goto out;
    if (!value_eq(h, back) || !value_eq(h, copy)) {
        rc = -1000;
        goto out;
    }
    if ((rc = azf_value_new_collection(&c, AZF_VALUE_COLLECTION_MODEL_BINDING_DATA)) ||
        (rc = azf_value_new_model_binding_data(&item, "v", "s", "t", "c", 1)) ||
        (rc = azf_value_collection_append(c, item)))
        goto out;
    item = NULL;
    azf__pb_typed_data_clear(&td);
    azf_value_free(back);
    back = NULL;
    if ((rc = azf__value_to_pb(c, &td, 0, NULL)) || (rc = azf__value_from_pb(&back, &td, 0, NULL)))
        goto out;
out:
    azf__pb_typed_data_clear(&td);
    azf_cookie_free(ck);
    azf_value_free(item);
    azf_value_free(h);
    azf_value_free(c);
    azf_value_free(back);
    azf_value_free(copy);
    return rc;
}

static void test_allocation_failures(void)
{
    azf_mem m = {NULL, t_malloc, t_free, t_calloc, t_realloc};
    CHECK_INT(azf_set_allocator(&m), 0);
    g_fail_at = 0;
    g_live = 0;
    CHECK_INT(build_all(), 0);
    CHECK_INT(g_live, 0);
    int nomem = 0, ok = 0, other = 0;
    for (long n = 1; n < 400; n++) {
        g_count = 0;
        g_fail_at = n;
        g_live = 0;
        int rc = build_all();
        if (rc == AZF_E_NOMEM)
            nomem++;
        else if (rc == 0)
            ok++;
        else
            other++;
        if (g_live != 0)
            fprintf(stderr, "leak with allocation %ld failing: %ld live\n", n, g_live);
        CHECK_INT(g_live, 0);
    }
    g_fail_at = 0;
    CHECK(nomem > 30); /* the failure really hit many allocations */
    CHECK(ok > 0);     /* and the loop ran past the last one */
    CHECK_INT(other, 0);
    CHECK_INT(azf_set_allocator(NULL), 0);
}

int main(void)
{
    RUN(test_scalars());
    RUN(test_collections());
    RUN(test_http());
    RUN(test_decode_nullable_request());
    RUN(test_map());
    RUN(test_map_large());
    RUN(test_allocation_failures());
    TEST_MAIN_END();
}
