/* FunctionRpc messages: protobuf-c decode and encode through the library
 * allocator, a pre-check of the wire format (depth limit, precise errors),
 * and the azf_message handle. */
#include "codec/codec_internal.h"

#include <string.h>

static void *pb_alloc(void *flag, size_t size)
{
    void *p = azf__malloc(size);
    if (!p && flag)
        *(int *)flag = 1;
    return p;
}

static void pb_free(void *flag, void *ptr)
{
    (void)flag;
    azf__free(ptr);
}

ProtobufCAllocator azf__codec_allocator = {pb_alloc, pb_free, NULL};

void azf__codec_free(ProtobufCMessage *msg)
{
    if (msg)
        protobuf_c_message_free_unpacked(msg, &azf__codec_allocator);
}

/* ---- wire-format check ---------------------------------------------------
 * protobuf-c reports no reason for a failure and recurses without a limit, so
 * the input is walked once first: tags and lengths only (payloads are skipped
 * in O(1)), descending into fields known to be messages. */

typedef struct wire_check {
    const uint8_t *base;
    azf__errmsg *err;
} wire_check;

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t r = 0;
    for (int shift = 0; shift < 70 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        r |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

static int expected_wire_type(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_DOUBLE:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return 1;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return 5;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return 2;
    default:
        return 0;
    }
}

static int check_wire(wire_check *c, const ProtobufCMessageDescriptor *d, const uint8_t *p,
                      const uint8_t *end, int depth)
{
    if (depth > AZF__CODEC_MAX_DEPTH)
        return azf__err(c->err, AZF_E_PARSE,
                        "malformed protobuf: messages nested deeper than %d levels at byte %zu",
                        AZF__CODEC_MAX_DEPTH, (size_t)(p - c->base));
    while (p < end) {
        size_t at = (size_t)(p - c->base);
        uint64_t tag, v;
        if (read_varint(&p, end, &tag))
            return azf__err(c->err, AZF_E_PARSE, "malformed protobuf in %s: bad tag at byte %zu",
                            d->name, at);
        uint64_t num = tag >> 3;
        int wt = (int)(tag & 7);
        if (num == 0 || num > 536870911u)
            return azf__err(c->err, AZF_E_PARSE,
                            "malformed protobuf in %s: invalid field number %llu at byte %zu",
                            d->name, (unsigned long long)num, at);
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)num);
        if (f) {
            int want = expected_wire_type(f->type);
            int packed_ok = f->label == PROTOBUF_C_LABEL_REPEATED && want != 2 && wt == 2;
            if (wt != want && !packed_ok)
                return azf__err(c->err, AZF_E_PARSE,
                                "malformed protobuf in %s: field %s (%u) has wire type %d, "
                                "expected %d, at byte %zu",
                                d->name, f->name, f->id, wt, want, at);
        }
        switch (wt) {
        case 0:
            if (read_varint(&p, end, &v))
                return azf__err(c->err, AZF_E_PARSE,
                                "malformed protobuf in %s: truncated varint in field %llu at "
                                "byte %zu",
                                d->name, (unsigned long long)num, at);
            break;
        case 1:
        case 5: {
            size_t n = wt == 1 ? 8 : 4;
            if ((size_t)(end - p) < n)
                return azf__err(c->err, AZF_E_PARSE,
                                "malformed protobuf in %s: field %llu at byte %zu needs %zu bytes, "
                                "%zu left",
                                d->name, (unsigned long long)num, at, n, (size_t)(end - p));
            p += n;
            break;
        }
        case 2:
            if (read_varint(&p, end, &v))
                return azf__err(c->err, AZF_E_PARSE,
                                "malformed protobuf in %s: truncated length of field %llu at "
                                "byte %zu",
                                d->name, (unsigned long long)num, at);
            if (v > (uint64_t)(end - p))
                return azf__err(c->err, AZF_E_PARSE,
                                "malformed protobuf in %s: field %llu at byte %zu has length %llu, "
                                "only %zu bytes left",
                                d->name, (unsigned long long)num, at, (unsigned long long)v,
                                (size_t)(end - p));
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                int rc = check_wire(c, f->descriptor, p, p + v, depth + 1);
                if (rc)
                    return rc;
            }
            p += v;
            break;
        default:
            return azf__err(c->err, AZF_E_PARSE,
                            "malformed protobuf in %s: unsupported wire type %d (field %llu) at "
                            "byte %zu",
                            d->name, wt, (unsigned long long)num, at);
        }
    }
    return 0;
}

static int unpack_any(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                      ProtobufCMessage **out, azf__errmsg *err)
{
    if (!data && len)
        return azf__err(err, AZF_E_INVALID, "NULL data");
    if (!data)
        data = (const uint8_t *)"";
    /* Always walked first: protobuf-c has no depth limit, and it accepts a
     * non-minimal encoding of field number 0 that it then re-encodes as a tag
     * it refuses. */
    wire_check c = {data, err};
    int rc = check_wire(&c, d, data, data + len, 1);
    if (rc)
        return rc;
    int nomem = 0;
    ProtobufCAllocator a = {pb_alloc, pb_free, &nomem};
    ProtobufCMessage *m = protobuf_c_message_unpack(d, &a, len, data);
    if (!m) {
        if (nomem)
            return azf__err(err, AZF_E_NOMEM, "out of memory decoding a %s of %zu bytes", d->name,
                            len);
        return azf__err(err, AZF_E_PARSE, "malformed protobuf: %s of %zu bytes refused", d->name,
                        len);
    }
    *out = m;
    return 0;
}

int azf__codec_unpack(const uint8_t *data, size_t len, azf__pb_streaming_message **out,
                      azf__errmsg *err)
{
    ProtobufCMessage *m = NULL;
    int rc = unpack_any(&azure_functions_rpc_messages__streaming_message__descriptor, data, len, &m,
                        err);
    if (rc == 0)
        *out = (azf__pb_streaming_message *)m;
    return rc;
}

int azf__codec_append_frame(azf_buf *out, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > AZF_FRAME_MAX_LENGTH)
        return AZF_E_TOOBIG;
    int rc = azf_buf_grow(out, out->size + AZF_FRAME_HEADER_SIZE + n);
    if (rc)
        return rc;
    uint8_t *p = (uint8_t *)out->ptr + out->size;
    azf_frame_write_header(p, n);
    protobuf_c_message_pack(msg, p + AZF_FRAME_HEADER_SIZE);
    out->size += AZF_FRAME_HEADER_SIZE + n;
    out->ptr[out->size] = '\0';
    return 0;
}

/* ---- azf_message ------------------------------------------------------- */

struct azf_message {
    azf__pb_streaming_message *pb; /* NULL: the empty message */
    azf__errmsg err;
};

static const azf__pb_streaming_message empty_message =
    AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__INIT;

static const azf__pb_streaming_message *content(const azf_message *m)
{
    return m && m->pb ? m->pb : &empty_message;
}

int azf_message_new(azf_message **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_message *m = azf__calloc(1, sizeof *m);
    if (!m)
        return AZF_E_NOMEM;
    *out = m;
    return 0;
}

void azf_message_free(azf_message *m)
{
    if (!m)
        return;
    azf__codec_free(m->pb ? &m->pb->base : NULL);
    azf__free(m);
}

azf__pb_streaming_message *azf__message_pb(azf_message *m)
{
    return m ? m->pb : NULL;
}

/* Installs `pb` in place of the old content; on failure the message is left empty. */
static int replace(azf_message *m, int rc, azf__pb_streaming_message *pb)
{
    azf__codec_free(m->pb ? &m->pb->base : NULL);
    m->pb = rc == 0 ? pb : NULL;
    return rc;
}

int azf_message_decode(azf_message *m, const uint8_t *data, size_t len)
{
    if (!m)
        return AZF_E_INVALID;
    azf__err_clear(&m->err);
    azf__pb_streaming_message *pb = NULL;
    int rc = azf__codec_unpack(data, len, &pb, &m->err);
    return replace(m, rc, pb);
}

int azf_message_from_json(azf_message *m, const char *json, size_t len)
{
    if (!m)
        return AZF_E_INVALID;
    azf__err_clear(&m->err);
    if (!json && len)
        return replace(m, azf__err(&m->err, AZF_E_INVALID, "NULL json"), NULL);
    ProtobufCMessage *pb = NULL;
    int rc = azf__json_read(&azure_functions_rpc_messages__streaming_message__descriptor,
                            json ? json : "", len, &pb, &m->err);
    return replace(m, rc, (azf__pb_streaming_message *)pb);
}

int azf_message_encode(const azf_message *m, azf_buf *out)
{
    if (!m || !out)
        return AZF_E_INVALID;
    const ProtobufCMessage *pb = &content(m)->base;
    size_t n = protobuf_c_message_get_packed_size(pb);
    int rc = azf_buf_grow(out, out->size + n);
    if (rc)
        return rc;
    protobuf_c_message_pack(pb, (uint8_t *)out->ptr + out->size);
    out->size += n;
    out->ptr[out->size] = '\0';
    return 0;
}

int azf_message_encode_frame(const azf_message *m, azf_buf *out)
{
    if (!m || !out)
        return AZF_E_INVALID;
    return azf__codec_append_frame(out, &content(m)->base);
}

int azf_message_to_json(const azf_message *m, azf_buf *out)
{
    if (!m || !out)
        return AZF_E_INVALID;
    return azf__json_write(out, &content(m)->base);
}

uint32_t azf_message_content_field(const azf_message *m)
{
    return (uint32_t)content(m)->content_case;
}

const char *azf_message_content_name(const azf_message *m)
{
    uint32_t id = azf_message_content_field(m);
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &azure_functions_rpc_messages__streaming_message__descriptor, id);
    return id && f ? f->name : "";
}

const char *azf_message_request_id(const azf_message *m)
{
    const char *id = content(m)->request_id;
    return id ? id : "";
}

const char *azf_message_errmsg(const azf_message *m)
{
    return m ? m->err.text : "";
}
