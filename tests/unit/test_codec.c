/* Tests of FunctionRpc messages: decode, encode, JSON both ways, bad input. */
#include "azf_test.h"
#include "codec/codec_internal.h"

#include <math.h>
#include <stdlib.h>

typedef AzureFunctionsRpcMessages__TypedData TypedData;

/* A StreamingMessage with an InvocationRequest carrying one int input. */
static void pack_invocation(int64_t value, azf_buf *out)
{
    TypedData td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
    td.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_INT;
    td.int_ = value;
    AzureFunctionsRpcMessages__ParameterBinding pb =
        AZURE_FUNCTIONS_RPC_MESSAGES__PARAMETER_BINDING__INIT;
    pb.name = "n";
    pb.rpc_data_case = AZURE_FUNCTIONS_RPC_MESSAGES__PARAMETER_BINDING__RPC_DATA_DATA;
    pb.data = &td;
    AzureFunctionsRpcMessages__ParameterBinding *inputs[] = {&pb};
    AzureFunctionsRpcMessages__InvocationRequest ir =
        AZURE_FUNCTIONS_RPC_MESSAGES__INVOCATION_REQUEST__INIT;
    ir.invocation_id = "inv-1";
    ir.function_id = "fn-1";
    ir.n_input_data = 1;
    ir.input_data = inputs;
    azf__msg sm = AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__INIT;
    sm.request_id = "req-1";
    sm.content_case = AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__CONTENT_INVOCATION_REQUEST;
    sm.invocation_request = &ir;
    CHECK_INT(azf__codec_append_frame(out, &sm.base), 0);
}

static void test_decode_encode(void)
{
    azf_buf frame = AZF_BUF_INIT;
    pack_invocation(-1, &frame);
    /* The frame header carries the packed length. */
    uint32_t len = ((uint32_t)(uint8_t)frame.ptr[1] << 24) |
                   ((uint32_t)(uint8_t)frame.ptr[2] << 16) |
                   ((uint32_t)(uint8_t)frame.ptr[3] << 8) | (uint8_t)frame.ptr[4];
    CHECK_INT(frame.ptr[0], 0);
    CHECK_INT(len, frame.size - 5);
    const uint8_t *body = (const uint8_t *)frame.ptr + 5;

    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_content_field(m), 0);
    CHECK_STR(azf_message_content_name(m), "");
    CHECK_STR(azf_message_request_id(m), "");
    CHECK_INT(azf_message_decode(m, body, len), 0);
    CHECK_INT(azf_message_content_field(m), 4);
    CHECK_STR(azf_message_content_name(m), "invocation_request");
    CHECK_STR(azf_message_request_id(m), "req-1");
    azf__msg *pb = azf__message_pb(m);
    CHECK(pb && pb->invocation_request && pb->invocation_request->n_input_data == 1);
    CHECK_INT(pb->invocation_request->input_data[0]->data->int_, -1);

    azf_buf enc = AZF_BUF_INIT;
    CHECK_INT(azf_message_encode(m, &enc), 0);
    CHECK(enc.size == len && memcmp(enc.ptr, body, len) == 0);
    azf_buf fr = AZF_BUF_INIT;
    CHECK_INT(azf_message_encode_frame(m, &fr), 0);
    CHECK(fr.size == frame.size && memcmp(fr.ptr, frame.ptr, frame.size) == 0);

    /* An empty message encodes to nothing and prints as {}. */
    azf_message *e;
    CHECK_INT(azf_message_new(&e), 0);
    azf_buf eb = AZF_BUF_INIT;
    CHECK_INT(azf_message_encode(e, &eb), 0);
    CHECK_INT(eb.size, 0);
    CHECK_INT(azf_message_to_json(e, &eb), 0);
    CHECK_STR(eb.ptr, "{}");
    CHECK_INT(azf_message_decode(e, NULL, 0), 0);
    CHECK_INT(azf_message_content_field(e), 0);
    azf_buf_dispose(&eb);
    azf_message_free(e);

    CHECK_INT(azf_message_decode(NULL, body, len), AZF_E_INVALID);
    CHECK_INT(azf_message_encode(m, NULL), AZF_E_INVALID);
    CHECK_INT(azf_message_new(NULL), AZF_E_INVALID);
    azf_message_free(NULL);
    azf_buf_dispose(&enc);
    azf_buf_dispose(&fr);
    azf_buf_dispose(&frame);
    azf_message_free(m);
}

/* sint64 is ZigZag on the wire: -1 -> 1, 1 -> 2, INT64_MIN -> UINT64_MAX. */
static void test_sint64_zigzag(void)
{
    struct {
        int64_t v;
        const char *wire; /* the TypedData bytes */
        size_t n;
    } cases[] = {
        {-1, "\x30\x01", 2},
        {1, "\x30\x02", 2},
        {-64, "\x30\x7f", 2},
        {INT64_MIN, "\x30\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11},
        {INT64_MAX, "\x30\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01", 11},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        TypedData td = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__INIT;
        td.data_case = AZURE_FUNCTIONS_RPC_MESSAGES__TYPED_DATA__DATA_INT;
        td.int_ = cases[i].v;
        uint8_t buf[16];
        size_t n = protobuf_c_message_pack(&td.base, buf);
        CHECK_INT(n, cases[i].n);
        CHECK(memcmp(buf, cases[i].wire, cases[i].n) == 0);
        TypedData *back = (TypedData *)protobuf_c_message_unpack(
            &azure_functions_rpc_messages__typed_data__descriptor, &azf__codec_allocator, n, buf);
        CHECK(back && back->int_ == cases[i].v);
        azf__codec_free(&back->base);
    }
    /* Through JSON: 64-bit integers are strings. */
    azf_buf frame = AZF_BUF_INIT, json = AZF_BUF_INIT;
    pack_invocation(INT64_MIN, &frame);
    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_decode(m, (const uint8_t *)frame.ptr + 5, frame.size - 5), 0);
    CHECK_INT(azf_message_to_json(m, &json), 0);
    CHECK_STR(json.ptr,
              "{\"requestId\":\"req-1\",\"invocationRequest\":{\"invocationId\":\"inv-1\","
              "\"functionId\":\"fn-1\",\"inputData\":[{\"name\":\"n\",\"data\":{\"int\":"
              "\"-9223372036854775808\"}}]}}");
    azf_buf_dispose(&frame);
    azf_buf_dispose(&json);
    azf_message_free(m);
}

static void test_unknown_fields(void)
{
    azf_buf frame = AZF_BUF_INIT;
    pack_invocation(7, &frame);
    azf_buf wire = AZF_BUF_INIT;
    azf_buf_append(&wire, frame.ptr + 5, frame.size - 5);
    /* Field 1000 (varint 5), field 999 (3 bytes), field 998 (fixed32), field 997 (fixed64). */
    static const uint8_t extra[] = {0xc0, 0x3e, 0x05, 0xba, 0x3e, 0x03, 'a',  'b',  'c',
                                    0xb5, 0x3e, 1,    2,    3,    4,    0xa9, 0x3e, 1,
                                    2,    3,    4,    5,    6,    7,    8};
    azf_buf_append(&wire, extra, sizeof extra);
    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_decode(m, (const uint8_t *)wire.ptr, wire.size), 0);
    CHECK_INT(azf_message_content_field(m), 4);
    /* Unknown fields are kept and re-encoded. */
    azf_buf enc = AZF_BUF_INIT;
    CHECK_INT(azf_message_encode(m, &enc), 0);
    CHECK_INT(enc.size, wire.size);
    /* ... but not shown in JSON. */
    azf_buf json = AZF_BUF_INIT;
    CHECK_INT(azf_message_to_json(m, &json), 0);
    CHECK(strstr(json.ptr, "\"int\":\"7\"") != NULL);
    CHECK(strstr(json.ptr, "abc") == NULL);
    azf_buf_dispose(&json);
    azf_buf_dispose(&enc);
    azf_buf_dispose(&wire);
    azf_buf_dispose(&frame);
    azf_message_free(m);
}

static void expect_parse_error(const uint8_t *data, size_t len, const char *needle)
{
    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_decode(m,
                                 (const uint8_t *)"\x0a\x01"
                                                  "x",
                                 3),
              0); /* request_id "x" */
    int rc = azf_message_decode(m, data, len);
    CHECK_INT(rc, AZF_E_PARSE);
    if (!strstr(azf_message_errmsg(m), needle))
        fprintf(stderr, "errmsg \"%s\" lacks \"%s\"\n", azf_message_errmsg(m), needle);
    CHECK(strstr(azf_message_errmsg(m), needle) != NULL);
    CHECK_STR(azf_message_request_id(m), ""); /* left empty */
    azf_message_free(m);
}

/* Appends a length-delimited field: tag byte, varint length, payload. */
static void append_ld(azf_buf *out, uint8_t tag, const azf_buf *payload)
{
    uint8_t hdr[12];
    size_t n = payload->size, h = 0;
    hdr[h++] = tag;
    do {
        hdr[h++] = (uint8_t)((n & 0x7f) | (n > 0x7f ? 0x80 : 0));
        n >>= 7;
    } while (n);
    azf_buf_append(out, hdr, h);
    azf_buf_append(out, payload->ptr ? payload->ptr : "", payload->size);
}

/* A StreamingMessage whose invocation_response.return_value nests `levels`
 * TypedData.http / RpcHttp.body pairs. */
static void build_deep(int levels, azf_buf *out)
{
    azf_buf cur = AZF_BUF_INIT;
    for (int i = 0; i < 2 * levels + 1; i++) {
        azf_buf next = AZF_BUF_INIT;
        append_ld(&next, i % 2 == 0 ? 0x2a /* TypedData.http */ : 0x22 /* RpcHttp.body */, &cur);
        azf_buf_dispose(&cur);
        cur = next;
    }
    azf_buf ir = AZF_BUF_INIT;
    append_ld(&ir, 0x22 /* InvocationResponse.return_value */, &cur);
    append_ld(out, 0x2a /* StreamingMessage.invocation_response */, &ir);
    azf_buf_dispose(&ir);
    azf_buf_dispose(&cur);
}

static void test_malformed(void)
{
    /* request_id with length 5 but only 2 bytes. */
    expect_parse_error((const uint8_t *)"\x0a\x05"
                                        "ab",
                       4, "length 5, only 2 bytes left");
    /* Truncated varint tag. */
    expect_parse_error((const uint8_t *)"\x80", 1, "bad tag at byte 0");
    /* Field number 0, also in a non-minimal encoding (which protobuf-c alone accepts,
     * then re-encodes as a tag it refuses: found by fuzz_frames). */
    expect_parse_error((const uint8_t *)"\x00\x01", 2, "invalid field number 0");
    expect_parse_error((const uint8_t *)"\x82\x00\x01x", 4, "invalid field number 0");
    /* A known string field sent as a varint. */
    expect_parse_error((const uint8_t *)"\x08\x01", 2, "field request_id (1) has wire type 0");
    /* Groups are not supported. */
    expect_parse_error((const uint8_t *)"\xfb\x01", 2, "wire type 3");
    /* Malformed inside a nested message: invocation_request { invocation_id len 9 }. */
    expect_parse_error((const uint8_t *)"\x22\x02\x0a\x09", 4, "InvocationRequest");
    /* Too deep: 121 levels of TypedData.http -> RpcHttp.body. */
    azf_buf deep = AZF_BUF_INIT;
    build_deep(60, &deep);
    expect_parse_error((const uint8_t *)deep.ptr, deep.size, "nested deeper than 100");
    deep.size = 0;
    build_deep(48, &deep); /* 99 levels are fine */
    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_decode(m, (const uint8_t *)deep.ptr, deep.size), 0);
    azf_message_free(m);
    azf_buf_dispose(&deep);
}

static void json_ok(const char *json, const char *expect_back)
{
    azf_message *m;
    azf_buf out = AZF_BUF_INIT;
    CHECK_INT(azf_message_new(&m), 0);
    int rc = azf_message_from_json(m, json, strlen(json));
    if (rc)
        fprintf(stderr, "from_json(%s): %s\n", json, azf_message_errmsg(m));
    CHECK_INT(rc, 0);
    CHECK_INT(azf_message_to_json(m, &out), 0);
    CHECK_STR(out.ptr, expect_back);
    /* And through the wire: encode, decode, same JSON. */
    azf_buf wire = AZF_BUF_INIT, again = AZF_BUF_INIT;
    CHECK_INT(azf_message_encode(m, &wire), 0);
    CHECK_INT(azf_message_decode(m, (const uint8_t *)wire.ptr, wire.size), 0);
    CHECK_INT(azf_message_to_json(m, &again), 0);
    CHECK_STR(again.ptr, expect_back);
    azf_buf_dispose(&again);
    azf_buf_dispose(&wire);
    azf_buf_dispose(&out);
    azf_message_free(m);
}

static void json_err(const char *json, const char *needle)
{
    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_from_json(m, json, strlen(json)), AZF_E_PARSE);
    if (!strstr(azf_message_errmsg(m), needle))
        fprintf(stderr, "errmsg \"%s\" lacks \"%s\"\n", azf_message_errmsg(m), needle);
    CHECK(strstr(azf_message_errmsg(m), needle) != NULL);
    CHECK_INT(azf_message_content_field(m), 0);
    azf_message_free(m);
}

/* Text holding NUL (a Python log message or exception may): packed whole, decoded
 * whole by azf_message_decode, printed with the NUL escaped, refused by the worker's
 * receive path (its strings are C strings). */
static void test_nul_in_strings(void)
{
    static const char text[] = "a\0b\"c";
    AzureFunctionsRpcMessages__RpcLog log = AZURE_FUNCTIONS_RPC_MESSAGES__RPC_LOG__INIT;
    ProtobufCMessageUnknownField spill[1];
    log.category = "cat";
    CHECK_INT(azf__codec_set_string(&log.base, spill, "message", text, sizeof text - 1), 0);
    azf__msg sm = AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__INIT;
    sm.content_case = AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__CONTENT_RPC_LOG;
    sm.rpc_log = &log;
    azf_buf wire = AZF_BUF_INIT, json = AZF_BUF_INIT, again = AZF_BUF_INIT;
    CHECK_INT(azf__json_write(&json, &sm.base), 0);
    CHECK_STR(json.ptr, "{\"rpcLog\":{\"category\":\"cat\",\"message\":\"a\\u0000b\\\"c\"}}");
    CHECK_INT(azf__codec_pack(&wire, &sm.base), 0);
    azf__codec_clear_strings(&log.base);
    /* On the wire: field 4 (message), 5 bytes, as any protobuf runtime writes it. */
    CHECK(wire.size >= 7 && memcmp(wire.ptr + wire.size - 7,
                                   "\x22\x05"
                                   "a\0b\"c",
                                   7) == 0);
    azf_message *m;
    CHECK_INT(azf_message_new(&m), 0);
    CHECK_INT(azf_message_decode(m, (const uint8_t *)wire.ptr, wire.size), 0);
    CHECK_INT(azf_message_to_json(m, &again), 0);
    CHECK_STR(again.ptr, json.ptr);
    json.size = 0;
    CHECK_INT(azf_message_encode(m, &json), 0); /* re-encoded whole */
    CHECK(json.size == wire.size && memcmp(json.ptr, wire.ptr, wire.size) == 0);
    /* The worker's receive path refuses it, naming the field. */
    azf__msg *pb = NULL;
    azf__errmsg err;
    azf__err_clear(&err);
    CHECK_INT(azf__codec_unpack((const uint8_t *)wire.ptr, wire.size, &pb, &err), AZF_E_PARSE);
    CHECK(strstr(err.text, "string field message (4)") != NULL);
    /* A repeated string holding NUL cannot be held: refused, never cut. */
    /* function_load_request { metadata { raw_bindings: "a\0b" } } */
    expect_parse_error((const uint8_t *)"\x42\x07\x12\x05\x52\x03"
                                        "a\0b",
                       9, "string field raw_bindings (10)");
    azf_message_free(m);
    azf_buf_dispose(&again);
    azf_buf_dispose(&json);
    azf_buf_dispose(&wire);
    /* The JSON view reads back whole (also inside a oneof and a map value's message);
     * an escaped backslash before u0000 is text, not NUL. */
    json_ok("{\"rpcLog\":{\"message\":\"a\\u0000b\\\\u0000\"}}",
            "{\"rpcLog\":{\"message\":\"a\\u0000b\\\\u0000\"}}");
    json_ok("{\"invocationRequest\":{\"triggerMetadata\":{\"k\":{\"string\":\"\\u0000\"}}}}",
            "{\"invocationRequest\":{\"triggerMetadata\":{\"k\":{\"string\":\"\\u0000\"}}}}");
    /* Where it cannot be held: refused, never cut. */
    json_err("{\"invocationRequest\":{\"triggerMetadata\":{\"k\\u0000\":{}}}}",
             "kept only in a singular string field");
    json_err("{\"functionLoadRequest\":{\"metadata\":{\"rawBindings\":[\"\\u0000\"]}}}",
             "kept only in a singular string field");
    json_err("{\"rpcLog\":{\"message\":\"\\u0000\\u0000\" ]}", "invalid JSON at byte 36 of 38");
}

static void test_json(void)
{
    /* Canonical form comes back unchanged. */
    json_ok("{\"requestId\":\"r\",\"rpcLog\":{\"level\":\"Warning\",\"message\":\"h\\u00e9 "
            "\\\"q\\\"\\n\","
            "\"propertiesMap\":{\"k\":{\"bytes\":\"AP8=\"}}}}",
            "{\"requestId\":\"r\",\"rpcLog\":{\"level\":\"Warning\",\"message\":\"h\xc3\xa9 "
            "\\\"q\\\"\\n\",\"propertiesMap\":{\"k\":{\"bytes\":\"AP8=\"}}}}");
    /* Proto names, enum numbers, url-safe base64 without padding, int64 as a number,
     * a oneof member set to its default, null fields skipped. */
    json_ok(
        "{\"request_id\":\"r\",\"rpc_log\":{\"level\":4,\"log_category\":null,"
        "\"propertiesMap\":{\"b\":{\"bytes\":\"-_8\"},\"i\":{\"int\":-5},\"z\":{\"int\":\"0\"},"
        "\"d\":{\"double\":\"-Infinity\"},\"n\":{\"double\":\"NaN\"},\"f\":{\"double\":1.5e300}}}}",
        "{\"requestId\":\"r\",\"rpcLog\":{\"level\":\"Error\",\"propertiesMap\":{\"b\":{\"bytes\":"
        "\"+/8=\"},\"i\":{\"int\":\"-5\"},\"z\":{\"int\":\"0\"},\"d\":{\"double\":\"-Infinity\"},"
        "\"n\":{\"double\":\"NaN\"},\"f\":{\"double\":1.5e+300}}}}");
    /* Bool-valued map, empty submessage, unknown enum number, repeated strings. */
    json_ok(
        "{\"closeSharedMemoryResourcesResponse\":{\"closeMapResults\":{\"a\":true,\"b\":false}}}",
        "{\"closeSharedMemoryResourcesResponse\":{\"closeMapResults\":{\"a\":true,\"b\":false}}"
        "}");
    json_ok("{\"workerHeartbeat\":{}}", "{\"workerHeartbeat\":{}}");
    json_ok("{\"rpcLog\":{\"level\":42}}", "{\"rpcLog\":{\"level\":42}}");
    json_ok("{\"closeSharedMemoryResourcesRequest\":{\"mapNames\":[\"a\",\"\",\"c\"]}}",
            "{\"closeSharedMemoryResourcesRequest\":{\"mapNames\":[\"a\",\"\",\"c\"]}}");
    /* Defaults are omitted; rawBody keeps its name. */
    json_ok(
        "{\"requestId\":\"\",\"invocationResponse\":{\"invocationId\":\"\",\"result\":{\"status\":"
        "\"Failure\"},\"returnValue\":{\"http\":{\"rawBody\":{\"string\":\"\"},\"statusCode\":"
        "\"200\",\"enableContentNegotiation\":false}}}}",
        "{\"invocationResponse\":{\"result\":{},\"returnValue\":{\"http\":{\"statusCode\":\"200\","
        "\"rawBody\":{\"string\":\"\"}}}}}");
    /* Doubles print the shortest form that reads back. */
    json_ok("{\"rpcLog\":{\"propertiesMap\":{\"x\":{\"double\":0.1},\"y\":{\"double\":-0.0}}}}",
            "{\"rpcLog\":{\"propertiesMap\":{\"x\":{\"double\":0.1},\"y\":{\"double\":-0}}}}");

    json_err("{\"rpcLog\":{\"bogus\":1}}", "unknown field \"bogus\" in message "
                                           "AzureFunctionsRpcMessages.RpcLog");
    json_err("{\"nope\":1}", "unknown field \"nope\" in message "
                             "AzureFunctionsRpcMessages.StreamingMessage");
    json_err("{\"rpcLog\":{\"level\":\"Loud\"}}", "unknown value \"Loud\" of enum");
    json_err("{\"rpcLog\":{},\"startStream\":{}}", "same oneof");
    json_err("{\"requestId\":\"a\",\"request_id\":\"b\"}", "more than once");
    json_err("{\"requestId\":5}", "field \"requestId\" of message "
                                  "AzureFunctionsRpcMessages.StreamingMessage: expected a string, "
                                  "got a number");
    json_err("{\"invocationRequest\":{\"retryContext\":{\"retryCount\":2147483648}}}",
             "out of range");
    json_err("{\"invocationRequest\":{\"retryContext\":{\"retryCount\":1.5}}}", "fraction");
    json_err("{\"invocationRequest\":{\"retryContext\":{\"retryCount\":\"12x\"}}}",
             "expected an integer");
    json_err("{\"rpcLog\":{\"propertiesMap\":{\"b\":{\"bytes\":\"a$==\"}}}}", "base64");
    json_err("{\"rpcLog\":{\"propertiesMap\":{\"b\":{\"int\":\"99999999999999999999\"}}}}",
             "out of range");
    json_err("{\"rpcLog\":{\"propertiesMap\":{\"b\":null}}}", "map value is null");
    json_err("{\"closeSharedMemoryResourcesRequest\":{\"mapNames\":\"a\"}}", "expected an array");
    /* Errors after a nested message still name the right field. */
    json_err("{\"rpcLog\":{\"propertiesMap\":{\"a\":{\"string\":\"x\"},\"b\":7}}}",
             "field \"propertiesMap\" of message AzureFunctionsRpcMessages.RpcLog: expected an "
             "object, got a number");
    json_err("{\"workerInitRequest\":{\"capabilities\":{\"a\":1}}}",
             "field \"capabilities\" of message AzureFunctionsRpcMessages.WorkerInitRequest: "
             "expected a string");
    json_err("{\"requestId\":\"a\"", "invalid JSON at byte");
    json_err("{} x", "unexpected data after the JSON value at byte 3");
    json_err("[1]", "expected a JSON object");
    json_err("", "invalid JSON");
}

/* ---- allocation failures ---------------------------------------------- */

static int g_count, g_fail_at, g_live;

static void *f_malloc(size_t n, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count == g_fail_at)
        return NULL;
    g_live++;
    return malloc(n);
}
static void f_free(void *p, void *ud)
{
    (void)ud;
    if (p)
        g_live--;
    free(p);
}
static void *f_calloc(size_t n, size_t s, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count == g_fail_at)
        return NULL;
    g_live++;
    return calloc(n, s);
}
static void *f_realloc(void *p, size_t s, void *ud)
{
    (void)ud;
    if (g_fail_at && ++g_count == g_fail_at)
        return NULL;
    if (!p)
        g_live++;
    return realloc(p, s);
}

static void test_failmalloc(void)
{
    azf_mem mem = {NULL, f_malloc, f_free, f_calloc, f_realloc};
    CHECK_INT(azf_set_allocator(&mem), 0);
    static const char json[] =
        "{\"requestId\":\"r\",\"invocationRequest\":{\"invocationId\":\"i\",\"inputData\":[{"
        "\"name\":"
        "\"req\",\"data\":{\"http\":{\"method\":\"GET\",\"headers\":{\"a\":\"b\"},\"body\":{"
        "\"bytes\":\"AAEC\"}}}}],\"triggerMetadata\":{\"k\":{\"json\":\"{}\"}}}}";
    int ok = 0;
    for (int fail = 1; fail < 500 && !ok; fail++) {
        g_count = 0;
        g_fail_at = fail;
        azf_message *m = NULL;
        azf_buf wire = AZF_BUF_INIT, text = AZF_BUF_INIT;
        int rc = azf_message_new(&m);
        if (!rc)
            rc = azf_message_from_json(m, json, sizeof json - 1);
        if (!rc)
            rc = azf_message_encode(m, &wire);
        if (!rc)
            rc = azf_message_decode(m, (const uint8_t *)wire.ptr, wire.size);
        if (!rc)
            rc = azf_message_to_json(m, &text);
        if (rc == 0) {
            ok = 1;
            CHECK_STR(text.ptr, json);
        } else {
            CHECK_INT(rc, AZF_E_NOMEM);
        }
        azf_buf_dispose(&wire);
        azf_buf_dispose(&text);
        azf_message_free(m);
        CHECK_INT(g_live, 0);
    }
    CHECK(ok);
    g_fail_at = 0;
    CHECK_INT(azf_set_allocator(NULL), 0);
}

int main(void)
{
    RUN(test_decode_encode());
    RUN(test_sint64_zigzag());
    RUN(test_unknown_fields());
    RUN(test_malformed());
    RUN(test_json());
    RUN(test_nul_in_strings());
    RUN(test_failmalloc());
    TEST_MAIN_END();
}
