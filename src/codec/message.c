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

void *azf__pb_new(const void *init, size_t size)
{
    void *p = azf__malloc(size);
    if (p)
        memcpy(p, init, size);
    return p;
}

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
    int keep_nul; /* singular strings holding NUL are held whole (azf_message_decode) */
    int held;     /* ... and one was seen */
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
            /* protobuf-c would hand the string over cut at its first NUL. */
            if (f && f->type == PROTOBUF_C_TYPE_STRING && memchr(p, 0, (size_t)v)) {
                if (c->keep_nul && f->label != PROTOBUF_C_LABEL_REPEATED &&
                    !azf__codec_is_map_entry(d))
                    c->held = 1;
                else
                    return azf__err(c->err, AZF_E_PARSE,
                                    "unsupported protobuf in %s: string field %s (%u) at byte %zu "
                                    "holds a NUL character at offset %zu (strings cannot carry NUL "
                                    "here; use bytes)",
                                    d->name, f->name, f->id, at,
                                    (size_t)((const uint8_t *)memchr(p, 0, (size_t)v) - p));
            }
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

/* ---- strings holding NUL ---------------------------------------------------
 * protobuf-c packs a `string` field up to its first NUL and decodes it the same way.
 * Such a string is held as an unknown field with the string field's own number: the
 * same bytes on the wire, its length kept (the JSON writer prints it as the field). */

/* An unknown length-delimited field as protobuf-c stores one: the data starts with the
 * varint length. Returns the allocated data (size in *n) or NULL. */
static uint8_t *prefixed_copy(const void *s, size_t len, size_t *n)
{
    uint8_t *d = azf__malloc(len + 10);
    if (!d)
        return NULL;
    size_t h = 0;
    for (size_t v = len; h == 0 || v; v >>= 7)
        d[h++] = (uint8_t)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
    memcpy(d + h, s, len);
    *n = h + len;
    return d;
}

int azf__codec_set_string(ProtobufCMessage *msg, ProtobufCMessageUnknownField *spill,
                          const char *field, const char *s, size_t len)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, field);
    char **slot = (char **)((char *)msg + f->offset);
    if (!memchr(s, 0, len)) {
        *slot = (char *)s;
        return 0;
    }
    size_t n;
    uint8_t *data = prefixed_copy(s, len, &n);
    if (!data)
        return AZF_E_NOMEM;
    *slot = (char *)"";
    msg->unknown_fields = spill;
    spill[msg->n_unknown_fields++] =
        (ProtobufCMessageUnknownField){f->id, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, n, data};
    return 0;
}

void azf__codec_clear_strings(ProtobufCMessage *msg)
{
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        azf__free(msg->unknown_fields[i].data);
    msg->n_unknown_fields = 0;
    msg->unknown_fields = NULL;
}

int azf__codec_hold_string(ProtobufCMessage *m, unsigned id, char **slot, size_t len)
{
    ProtobufCMessageUnknownField *uf =
        azf__realloc(m->unknown_fields, (m->n_unknown_fields + 1) * sizeof *uf);
    if (uf)
        m->unknown_fields = uf;
    size_t n;
    uint8_t *data = uf ? prefixed_copy(*slot, len, &n) : NULL;
    if (!data)
        return AZF_E_NOMEM;
    uf[m->n_unknown_fields++] =
        (ProtobufCMessageUnknownField){id, PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED, n, data};
    azf__free(*slot);
    *slot = NULL;
    return 0;
}

int azf__codec_is_map_entry(const ProtobufCMessageDescriptor *d)
{
    size_t n = strlen(d->short_name);
    return d->n_fields == 2 && n > 5 && strcmp(d->short_name + n - 5, "Entry") == 0 &&
           d->fields[0].id == 1 && strcmp(d->fields[0].name, "key") == 0 && d->fields[1].id == 2 &&
           strcmp(d->fields[1].name, "value") == 0;
}

const char *azf__codec_held_string(const ProtobufCMessage *msg, unsigned id, size_t *len)
{
    const ProtobufCMessageUnknownField *held = NULL;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++)
        if (msg->unknown_fields[i].tag == id &&
            msg->unknown_fields[i].wire_type == PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED)
            held = &msg->unknown_fields[i]; /* the last one wins, as on the wire */
    const uint8_t *p = held ? held->data : NULL;
    uint64_t n;
    if (!p || read_varint(&p, held->data + held->len, &n) ||
        n != (uint64_t)(held->data + held->len - p))
        return NULL;
    *len = (size_t)n;
    return (const char *)p;
}

/* After a decode with keep_nul: each singular string field whose last wire value holds
 * a NUL moves from its (cut) C string into an unknown field. Only the last occurrence of
 * a field counts, as in protobuf-c's decode (and merge of repeated singular messages);
 * the wire was checked, so reads cannot fail. */
static int hold_strings(const ProtobufCMessageDescriptor *d, ProtobufCMessage *m, const uint8_t *p,
                        const uint8_t *end)
{
    typedef struct {
        const uint8_t *val;
        size_t len, seen;
    } occurrence;
    occurrence *last = azf__calloc(d->n_fields ? d->n_fields : 1, sizeof *last);
    if (!last)
        return AZF_E_NOMEM;
    int rc = 0;
    while (p < end && !rc) {
        uint64_t tag = 0, v = 0;
        read_varint(&p, end, &tag);
        int wt = (int)(tag & 7);
        if (wt == 0)
            read_varint(&p, end, &v);
        else if (wt == 1 || wt == 5)
            p += wt == 1 ? 8 : 4;
        if (wt != 2)
            continue;
        read_varint(&p, end, &v);
        const uint8_t *val = p;
        p += v;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
        if (!f)
            continue;
        occurrence *o = &last[f - d->fields];
        size_t k = o->seen++;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED && k)
            rc = AZF_E_PARSE; /* merged occurrences: which one a string came from is lost */
        else if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(size_t *)((char *)m + f->quantifier_offset);
            ProtobufCMessage **arr = *(ProtobufCMessage ***)((char *)m + f->offset);
            if (k < n)
                rc = hold_strings(f->descriptor, arr[k], val, val + v);
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING) {
            o->val = val;
            o->len = (size_t)v;
        }
    }
    for (unsigned i = 0; i < d->n_fields && !rc; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const occurrence *o = &last[i];
        if (!o->val || f->label == PROTOBUF_C_LABEL_REPEATED ||
            ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
             *(uint32_t *)((char *)m + f->quantifier_offset) != f->id))
            continue;
        void **slot = (void **)((char *)m + f->offset);
        if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            if (*slot)
                rc = hold_strings(f->descriptor, *slot, o->val, o->val + o->len);
            continue;
        }
        const uint8_t *nul = memchr(o->val, 0, o->len);
        char *s = *slot;
        /* protobuf-c's copy of these very bytes (o->len + 1 of them): cut at the same NUL. */
        if (!nul || !s || strlen(s) != (size_t)(nul - o->val) || memcmp(s, o->val, strlen(s)))
            continue;
        rc = azf__codec_hold_string(m, f->id, (char **)slot, o->len);
    }
    azf__free(last);
    return rc;
}

static int unpack_any(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len,
                      int keep_nul, ProtobufCMessage **out, azf__errmsg *err)
{
    if (!data && len)
        return azf__err(err, AZF_E_INVALID, "NULL data");
    if (!data)
        data = (const uint8_t *)"";
    /* Always walked first: protobuf-c has no depth limit, and it accepts a
     * non-minimal encoding of field number 0 that it then re-encodes as a tag
     * it refuses. */
    wire_check c = {data, err, keep_nul, 0};
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
    if (c.held && (rc = hold_strings(d, m, data, data + len))) {
        protobuf_c_message_free_unpacked(m, &a);
        if (rc == AZF_E_NOMEM)
            return azf__err(err, rc, "out of memory decoding a %s of %zu bytes", d->name, len);
        return azf__err(err, rc,
                        "unsupported protobuf in %s: a string holding NUL, and a message field "
                        "given more than once (merged)",
                        d->name);
    }
    *out = m;
    return 0;
}

int azf__codec_unpack(const uint8_t *data, size_t len, azf__msg **out, azf__errmsg *err)
{
    ProtobufCMessage *m = NULL;
    int rc = unpack_any(&azure_functions_rpc_messages__streaming_message__descriptor, data, len, 0,
                        &m, err);
    if (rc == 0)
        *out = (azf__msg *)m;
    return rc;
}

void azf__msg_free(azf__msg *m)
{
    azf__codec_free(m ? &m->base : NULL);
}

/* The first length-delimited field `num` in p[0..end): 1 with its bytes, else 0. */
static int find_field(const uint8_t *p, const uint8_t *end, uint64_t num, const uint8_t **val,
                      size_t *n)
{
    while (p < end) {
        uint64_t tag, v;
        if (read_varint(&p, end, &tag))
            return 0;
        switch (tag & 7) {
        case 0:
            if (read_varint(&p, end, &v))
                return 0;
            break;
        case 1:
        case 5: {
            size_t w = (tag & 7) == 1 ? 8 : 4;
            if ((size_t)(end - p) < w)
                return 0;
            p += w;
            break;
        }
        case 2:
            if (read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return 0;
            if (tag >> 3 == num) {
                *val = p;
                *n = (size_t)v;
                return 1;
            }
            p += v;
            break;
        default:
            return 0;
        }
    }
    return 0;
}

int azf__codec_peek_invocation_id(const uint8_t *data, size_t len, const char **id, size_t *n)
{
    const uint8_t *req, *v;
    size_t rn, vn;
    if (!data || !find_field(data, data + len, AZF__PB_CASE(INVOCATION_REQUEST), &req, &rn) ||
        !find_field(req, req + rn, 1, &v, &vn))
        return 0;
    *id = (const char *)v;
    *n = vn;
    return 1;
}

int azf__codec_pack(azf_buf *out, const ProtobufCMessage *msg)
{
    size_t n = protobuf_c_message_get_packed_size(msg);
    if (n > AZF_FRAME_MAX_LENGTH)
        return AZF_E_TOOBIG;
    int rc = azf_buf_grow(out, out->size + n);
    if (rc)
        return rc;
    protobuf_c_message_pack(msg, (uint8_t *)out->ptr + out->size);
    out->size += n;
    out->ptr[out->size] = '\0';
    return 0;
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
    azf__msg *pb; /* NULL: the empty message */
    azf__errmsg err;
};

static const azf__msg empty_message = AZURE_FUNCTIONS_RPC_MESSAGES__STREAMING_MESSAGE__INIT;

static const azf__msg *content(const azf_message *m)
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

azf__msg *azf__message_pb(azf_message *m)
{
    return m ? m->pb : NULL;
}

/* Installs `pb` in place of the old content; on failure the message is left empty. */
static int replace(azf_message *m, int rc, azf__msg *pb)
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
    ProtobufCMessage *pb = NULL;
    int rc = unpack_any(&azure_functions_rpc_messages__streaming_message__descriptor, data, len, 1,
                        &pb, &m->err);
    return replace(m, rc, (azf__msg *)pb);
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
    return replace(m, rc, (azf__msg *)pb);
}

int azf_message_encode(const azf_message *m, azf_buf *out)
{
    if (!m || !out)
        return AZF_E_INVALID;
    return azf__codec_pack(out, &content(m)->base);
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
