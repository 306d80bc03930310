/* The proto3 canonical JSON view of any protobuf-c message, both directions,
 * driven by the descriptors (no per-message code). It follows Google's
 * json_format: lowerCamelCase names, 64-bit integers as strings, bytes in
 * base64, enums by name, maps as objects, default values omitted except for
 * set oneof members, NaN and the infinities as strings. */
#include "codec/codec_internal.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MEMBER(msg, off, type) ((type *)((char *)(msg) + (off)))
#define CMEMBER(msg, off, type) ((const type *)((const char *)(msg) + (off)))

/* ---- descriptor helpers ------------------------------------------------- */

/* The JSON name protoc gives a field: underscores dropped, the letter after
 * one upper-cased, everything else unchanged ("rawBody" stays "rawBody"). */
static void json_name(const char *name, char *out, size_t cap)
{
    size_t n = 0;
    int upper = 0;
    for (; *name && n + 1 < cap; name++) {
        if (*name == '_') {
            upper = 1;
            continue;
        }
        char c = *name;
        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        upper = 0;
        out[n++] = c;
    }
    out[n] = '\0';
}

/* protoc-c keeps no map flag: a map is a repeated field of a nested
 * "<Name>Entry" message with exactly key = 1 and value = 2. */
static int is_map(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && f->label == PROTOBUF_C_LABEL_REPEATED &&
           azf__codec_is_map_entry(f->descriptor);
}

static size_t elem_size(ProtobufCType t)
{
    switch (t) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(ProtobufCMessage *);
    default: /* 32-bit integers, float, enum */
        return 4;
    }
}

/* Whether json_format prints the field (proto3: non-default, or a set oneof member). */
static int is_present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED)
        return *CMEMBER(m, f->quantifier_offset, size_t) > 0;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *CMEMBER(m, f->quantifier_offset, uint32_t) == f->id;
    if (f->type == PROTOBUF_C_TYPE_MESSAGE)
        return *CMEMBER(m, f->offset, void *) != NULL;
    if (f->label == PROTOBUF_C_LABEL_REQUIRED)
        return 1;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
        if (f->type == PROTOBUF_C_TYPE_STRING)
            return *CMEMBER(m, f->offset, char *) != NULL;
        return *CMEMBER(m, f->quantifier_offset, protobuf_c_boolean) != 0;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *CMEMBER(m, f->offset, char *);
        return s && *s;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return CMEMBER(m, f->offset, ProtobufCBinaryData)->len > 0;
    default: {
        /* Bitwise, as upb does: -0.0 is present. */
        static const uint8_t zero[8];
        return memcmp(CMEMBER(m, f->offset, char), zero, elem_size(f->type)) != 0;
    }
    }
}

/* ---- writer ------------------------------------------------------------- */

typedef struct writer {
    azf_buf *out;
    int rc;
} writer;

static void put(writer *w, const char *s, size_t n)
{
    if (!w->rc)
        w->rc = azf_buf_append(w->out, s, n);
}

static void puts_(writer *w, const char *s)
{
    put(w, s, strlen(s));
}

/* Length of a valid UTF-8 sequence at s (1..4), or 0 if invalid. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        len = 2, cp = c & 0x1f;
    else if (c >= 0xe0 && c <= 0xef)
        len = 3, cp = c & 0x0f;
    else if (c >= 0xf0 && c <= 0xf4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
        return 0;
    return len;
}

/* A JSON string; invalid UTF-8 (protobuf-c does not check it) becomes U+FFFD. */
static void put_string(writer *w, const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    put(w, "\"", 1);
    size_t run = 0; /* start of the pending run of bytes copied verbatim */
    for (size_t i = 0; i < n;) {
        unsigned char c = s[i];
        size_t len = 1;
        const char *esc = NULL;
        char tmp[8];
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20) {
            snprintf(tmp, sizeof tmp, "\\u%04x", c);
            esc = tmp;
        } else if (c >= 0x80) {
            len = utf8_len(s + i, n - i);
            if (!len) {
                esc = "\xef\xbf\xbd";
                len = 1;
            } else if (len == 3 && c == 0xe2 && s[i + 1] == 0x80 && (s[i + 2] & 0xfe) == 0xa8) {
                /* U+2028 and U+2029 are line breaks to many readers: keep one message a line. */
                esc = s[i + 2] == 0xa8 ? "\\u2028" : "\\u2029";
            }
        }
        if (esc) {
            put(w, str + run, i - run);
            puts_(w, esc);
            run = i + len;
        }
        i += len;
    }
    put(w, str + run, n - run);
    put(w, "\"", 1);
}

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void put_base64(writer *w, const uint8_t *p, size_t n)
{
    if (w->rc)
        return;
    size_t out_len = (n + 2) / 3 * 4;
    azf_buf *b = w->out;
    if ((w->rc = azf_buf_grow(b, b->size + out_len + 2)))
        return;
    char *o = b->ptr + b->size;
    *o++ = '"';
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        *o++ = b64_std[v >> 18];
        *o++ = b64_std[(v >> 12) & 63];
        *o++ = b64_std[(v >> 6) & 63];
        *o++ = b64_std[v & 63];
    }
    if (i < n) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0);
        *o++ = b64_std[v >> 18];
        *o++ = b64_std[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64_std[(v >> 6) & 63] : '=';
        *o++ = '=';
    }
    *o++ = '"';
    b->size = (size_t)(o - b->ptr);
    b->ptr[b->size] = '\0';
}

/* The shortest %g form that reads back as the same value. */
static void put_double(writer *w, double v, int is_float)
{
    char tmp[40];
    if (isnan(v)) {
        puts_(w, "\"NaN\"");
        return;
    }
    if (isinf(v)) {
        puts_(w, v > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    for (int prec = is_float ? 6 : 15; prec <= 17; prec++) {
        snprintf(tmp, sizeof tmp, "%.*g", prec, v);
        if (is_float ? strtof(tmp, NULL) == (float)v : strtod(tmp, NULL) == v)
            break;
    }
    puts_(w, tmp);
}

static void write_message(writer *w, const ProtobufCMessage *m);

/* One value of field f stored at p. */
static void write_value(writer *w, const ProtobufCFieldDescriptor *f, const void *p)
{
    char tmp[40];
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        snprintf(tmp, sizeof tmp, "%" PRId32, *(const int32_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        snprintf(tmp, sizeof tmp, "%" PRIu32, *(const uint32_t *)p);
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        snprintf(tmp, sizeof tmp, "\"%" PRId64 "\"", *(const int64_t *)p);
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        snprintf(tmp, sizeof tmp, "\"%" PRIu64 "\"", *(const uint64_t *)p);
        break;
    case PROTOBUF_C_TYPE_BOOL:
        snprintf(tmp, sizeof tmp, "%s", *(const protobuf_c_boolean *)p ? "true" : "false");
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        put_double(w, *(const float *)p, 1);
        return;
    case PROTOBUF_C_TYPE_DOUBLE:
        put_double(w, *(const double *)p, 0);
        return;
    case PROTOBUF_C_TYPE_ENUM: {
        int32_t v = *(const int32_t *)p;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev) {
            put_string(w, ev->name, strlen(ev->name));
            return;
        }
        snprintf(tmp, sizeof tmp, "%" PRId32, v); /* an unknown value prints as its number */
        break;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        put_string(w, s ? s : "", s ? strlen(s) : 0);
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        put_base64(w, b->data, b->len);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        if (sub)
            write_message(w, sub);
        else
            puts_(w, "{}"); /* a map entry without its message value */
        return;
    }
    default:
        snprintf(tmp, sizeof tmp, "null");
        break;
    }
    puts_(w, tmp);
}

/* Map keys are strings: bool and integer keys are printed, then quoted. */
static void write_map_key(writer *w, const ProtobufCFieldDescriptor *kf, const void *p)
{
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        write_value(w, kf, p);
        return;
    }
    azf_buf tmp = AZF_BUF_INIT;
    writer tw = {&tmp, 0};
    write_value(&tw, kf, p);
    if (tw.rc) {
        w->rc = tw.rc;
    } else if (tmp.ptr[0] == '"') {
        put(w, tmp.ptr, tmp.size);
    } else {
        put(w, "\"", 1);
        put(w, tmp.ptr, tmp.size);
        put(w, "\"", 1);
    }
    azf_buf_dispose(&tmp);
}

static void write_field(writer *w, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        write_value(w, f, CMEMBER(m, f->offset, char));
        return;
    }
    size_t n = *CMEMBER(m, f->quantifier_offset, size_t);
    const char *arr = *CMEMBER(m, f->offset, char *);
    if (is_map(f)) {
        const ProtobufCMessageDescriptor *ed = f->descriptor;
        put(w, "{", 1);
        for (size_t i = 0; i < n; i++) {
            const ProtobufCMessage *e = ((ProtobufCMessage *const *)arr)[i];
            if (i)
                put(w, ",", 1);
            write_map_key(w, &ed->fields[0], CMEMBER(e, ed->fields[0].offset, char));
            put(w, ":", 1);
            write_value(w, &ed->fields[1], CMEMBER(e, ed->fields[1].offset, char));
        }
        put(w, "}", 1);
        return;
    }
    size_t sz = elem_size(f->type);
    put(w, "[", 1);
    for (size_t i = 0; i < n; i++) {
        if (i)
            put(w, ",", 1);
        write_value(w, f, arr + i * sz);
    }
    put(w, "]", 1);
}

static void write_message(writer *w, const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    int first = 1;
    char name[256];
    put(w, "{", 1);
    for (unsigned i = 0; i < d->n_fields && !w->rc; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        /* A string holding NUL (azf__codec_set_string): printed whole, NUL escaped. */
        size_t held_len = 0;
        const char *held =
            f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED
                ? azf__codec_held_string(m, f->id, &held_len)
                : NULL;
        if (!held && !is_present(m, f))
            continue;
        if (!first)
            put(w, ",", 1);
        first = 0;
        json_name(f->name, name, sizeof name);
        put_string(w, name, strlen(name));
        put(w, ":", 1);
        if (held)
            put_string(w, held, held_len);
        else
            write_field(w, m, f);
    }
    put(w, "}", 1);
}

int azf__json_write(azf_buf *out, const ProtobufCMessage *msg)
{
    writer w = {out, 0};
    size_t old = out->size;
    write_message(&w, msg);
    if (w.rc && out->ptr) {
        out->size = old;
        out->ptr[old] = '\0';
    }
    return w.rc;
}

/* ---- reader ------------------------------------------------------------- */

/* cJSON strings end at NUL, so before parsing, each \u0000 escape of a text that has one
 * becomes this byte (never in UTF-8, refused in such a text), and back to NUL after. */
#define NUL_MARK '\xff'

typedef struct reader {
    azf__errmsg *err;
    const ProtobufCMessageDescriptor *msg; /* for error messages */
    const ProtobufCFieldDescriptor *field;
    int nul_marks; /* the text had \u0000 escapes (NUL_MARK in strings) */
    int may_hold;  /* the string being read may hold them: a singular, non-map field */
} reader;

static const char *json_type(const cJSON *v)
{
    if (cJSON_IsObject(v))
        return "an object";
    if (cJSON_IsArray(v))
        return "an array";
    if (cJSON_IsString(v))
        return "a string";
    if (cJSON_IsNumber(v))
        return "a number";
    if (cJSON_IsBool(v))
        return "a boolean";
    return "null";
}

static int field_err(reader *r, const char *what, const cJSON *v)
{
    char name[256];
    json_name(r->field->name, name, sizeof name);
    return azf__err(r->err, AZF_E_PARSE, "field \"%s\" of message %s: %s%s%s", name, r->msg->name,
                    what, v ? ", got " : "", v ? json_type(v) : "");
}

static int nomem(reader *r)
{
    return azf__err(r->err, AZF_E_NOMEM, "out of memory parsing JSON for message %s", r->msg->name);
}

/* A decimal integer in a string: optional '-', digits, nothing else. */
static int parse_int_text(const char *s, int is_unsigned, int64_t *sv, uint64_t *uv)
{
    const char *p = s;
    if (*p == '-' && !is_unsigned)
        p++;
    if (*p < '0' || *p > '9')
        return -1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9')
            return -1;
    char *end;
    errno = 0;
    if (is_unsigned)
        *uv = strtoull(s, &end, 10);
    else
        *sv = strtoll(s, &end, 10);
    return errno == ERANGE ? -2 : 0;
}

/* An integer field from a JSON number or a string, range-checked. */
static int read_int(reader *r, const cJSON *v, int64_t min, int64_t max, uint64_t umax,
                    int is_unsigned, int64_t *sv, uint64_t *uv)
{
    if (cJSON_IsString(v)) {
        int rc = parse_int_text(v->valuestring, is_unsigned, sv, uv);
        if (rc == -1)
            return field_err(r, "expected an integer", v);
        if (rc == -2)
            return field_err(r, "integer out of range", NULL);
    } else if (cJSON_IsNumber(v)) {
        double d = v->valuedouble;
        if (!isfinite(d))
            return field_err(r, "expected an integer", v);
        if (fabs(d) > 9007199254740992.0)
            return field_err(r,
                             "integer too large for an exact JSON number (write it as a "
                             "string)",
                             NULL);
        if ((double)(int64_t)d != d)
            return field_err(r, "expected an integer, got a number with a fraction", NULL);
        if (is_unsigned) {
            if (d < 0)
                return field_err(r, "integer out of range", NULL);
            *uv = (uint64_t)d;
        } else {
            *sv = (int64_t)d;
        }
    } else {
        return field_err(r, "expected an integer", v);
    }
    if (is_unsigned ? *uv > umax : (*sv < min || *sv > max))
        return field_err(r, "integer out of range", NULL);
    return 0;
}

static int read_double(reader *r, const cJSON *v, int is_float, double *out)
{
    if (cJSON_IsNumber(v)) {
        *out = v->valuedouble;
    } else if (cJSON_IsString(v)) {
        const char *s = v->valuestring;
        if (strcmp(s, "NaN") == 0) {
            *out = NAN;
        } else if (strcmp(s, "Infinity") == 0) {
            *out = INFINITY;
        } else if (strcmp(s, "-Infinity") == 0) {
            *out = -INFINITY;
        } else {
            char *end;
            errno = 0;
            *out = strtod(s, &end);
            if (!*s || *end || !isfinite(*out) || (*s < '0' && *s != '-' && *s != '.') ||
                (*s > '9'))
                return field_err(r, "expected a number, \"NaN\", \"Infinity\" or \"-Infinity\"", v);
        }
    } else {
        return field_err(r, "expected a number", v);
    }
    if (is_float && isfinite(*out) && fabs(*out) > FLT_MAX)
        return field_err(r, "float value out of range", NULL);
    return 0;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* Standard or URL-safe base64, padding optional. */
static int read_bytes(reader *r, const cJSON *v, ProtobufCBinaryData *out)
{
    if (!cJSON_IsString(v))
        return field_err(r, "expected a base64 string", v);
    const char *s = v->valuestring;
    size_t n = strlen(s);
    while (n > 0 && s[n - 1] == '=' && strlen(s) - n < 2)
        n--;
    if (n % 4 == 1)
        return field_err(r, "invalid base64 (bad length)", NULL);
    uint8_t *p = azf__malloc(n / 4 * 3 + 3);
    if (!p)
        return nomem(r);
    size_t o = 0;
    uint32_t acc = 0;
    for (size_t i = 0; i < n; i++) {
        int x = b64_value((unsigned char)s[i]);
        if (x < 0) {
            azf__free(p);
            return field_err(r, "invalid base64 character", NULL);
        }
        acc = acc << 6 | (uint32_t)x;
        if (i % 4 == 3) {
            p[o++] = (uint8_t)(acc >> 16);
            p[o++] = (uint8_t)(acc >> 8);
            p[o++] = (uint8_t)acc;
            acc = 0;
        }
    }
    if (n % 4 == 2) {
        p[o++] = (uint8_t)(acc >> 4);
    } else if (n % 4 == 3) {
        p[o++] = (uint8_t)(acc >> 10);
        p[o++] = (uint8_t)(acc >> 2);
    }
    out->data = p;
    out->len = o;
    return 0;
}

static int read_message(reader *r, const ProtobufCMessageDescriptor *d, const cJSON *obj,
                        ProtobufCMessage **out, int depth);

/* One value of field f (never null) into dst. */
static int read_value(reader *r, const ProtobufCFieldDescriptor *f, const cJSON *v, void *dst,
                      int depth)
{
    int64_t sv = 0;
    uint64_t uv = 0;
    int rc;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = read_int(r, v, INT32_MIN, INT32_MAX, 0, 0, &sv, &uv)))
            return rc;
        *(int32_t *)dst = (int32_t)sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = read_int(r, v, 0, 0, UINT32_MAX, 1, &sv, &uv)))
            return rc;
        *(uint32_t *)dst = (uint32_t)uv;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = read_int(r, v, INT64_MIN, INT64_MAX, 0, 0, &sv, &uv)))
            return rc;
        *(int64_t *)dst = sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = read_int(r, v, 0, 0, UINT64_MAX, 1, &sv, &uv)))
            return rc;
        *(uint64_t *)dst = uv;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!cJSON_IsBool(v))
            return field_err(r, "expected true or false", v);
        *(protobuf_c_boolean *)dst = cJSON_IsTrue(v);
        return 0;
    case PROTOBUF_C_TYPE_FLOAT:
    case PROTOBUF_C_TYPE_DOUBLE: {
        double d = 0;
        if ((rc = read_double(r, v, f->type == PROTOBUF_C_TYPE_FLOAT, &d)))
            return rc;
        if (f->type == PROTOBUF_C_TYPE_FLOAT)
            *(float *)dst = (float)d;
        else
            *(double *)dst = d;
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *ed = f->descriptor;
        if (cJSON_IsString(v)) {
            const ProtobufCEnumValue *ev =
                protobuf_c_enum_descriptor_get_value_by_name(ed, v->valuestring);
            if (!ev) {
                char what[320];
                snprintf(what, sizeof what, "unknown value \"%.100s\" of enum %s", v->valuestring,
                         ed->name);
                return field_err(r, what, NULL);
            }
            *(int32_t *)dst = ev->value;
            return 0;
        }
        if (!cJSON_IsNumber(v))
            return field_err(r, "expected an enum name or number", v);
        if ((rc = read_int(r, v, INT32_MIN, INT32_MAX, 0, 0, &sv, &uv)))
            return rc;
        *(int32_t *)dst = (int32_t)sv; /* proto3 enums are open */
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        if (!cJSON_IsString(v))
            return field_err(r, "expected a string", v);
        if (r->nul_marks && strchr(v->valuestring, NUL_MARK) && !r->may_hold)
            return field_err(r, "\\u0000 (NUL) is kept only in a singular string field", NULL);
        char *s = azf__strdup(v->valuestring);
        if (!s)
            return nomem(r);
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES:
        return read_bytes(r, v, dst);
    case PROTOBUF_C_TYPE_MESSAGE: {
        /* Keep this field as the context of later errors at this level. */
        reader saved = *r;
        rc = read_message(r, f->descriptor, v, dst, depth + 1);
        r->msg = saved.msg;
        r->field = saved.field;
        return rc;
    }
    default:
        return field_err(r, "unsupported field type", NULL);
    }
}

/* A map key (always a JSON string) into the entry's key field. */
static int read_map_key(reader *r, const ProtobufCFieldDescriptor *kf, const char *key, void *dst)
{
    switch (kf->type) {
    case PROTOBUF_C_TYPE_STRING: {
        if (r->nul_marks && strchr(key, NUL_MARK))
            return field_err(r, "\\u0000 (NUL) is kept only in a singular string field", NULL);
        char *s = azf__strdup(key);
        if (!s)
            return nomem(r);
        *(char **)dst = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BOOL:
        if (strcmp(key, "true") && strcmp(key, "false"))
            return field_err(r, "map key is not \"true\" or \"false\"", NULL);
        *(protobuf_c_boolean *)dst = key[0] == 't';
        return 0;
    default: { /* integer keys: parsed like integers written as strings */
        cJSON tmp;
        memset(&tmp, 0, sizeof tmp);
        tmp.type = cJSON_String;
        tmp.valuestring = (char *)key;
        return read_value(r, kf, &tmp, dst, 0);
    }
    }
}

static int read_map(reader *r, const ProtobufCFieldDescriptor *f, const cJSON *v, void *msg,
                    int depth)
{
    if (!cJSON_IsObject(v))
        return field_err(r, "expected an object (map)", v);
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (!count)
        return 0;
    ProtobufCMessage **arr = azf__calloc(count, sizeof *arr);
    if (!arr)
        return nomem(r);
    *MEMBER(msg, f->offset, ProtobufCMessage **) = arr;
    size_t *n = MEMBER(msg, f->quantifier_offset, size_t);
    for (const cJSON *it = v->child; it; it = it->next) {
        if (cJSON_IsNull(it))
            return field_err(r, "map value is null", NULL);
        ProtobufCMessage *e = azf__malloc(ed->sizeof_message);
        if (!e)
            return nomem(r);
        ed->message_init(e);
        arr[(*n)++] = e; /* owned by msg from here on, even if filling it fails */
        int rc = read_map_key(r, &ed->fields[0], it->string, MEMBER(e, ed->fields[0].offset, char));
        if (!rc)
            /* The entry is a message level on the wire: count it, as the decoder does. */
            rc =
                read_value(r, &ed->fields[1], it, MEMBER(e, ed->fields[1].offset, char), depth + 1);
        if (rc)
            return rc;
    }
    return 0;
}

static int read_repeated(reader *r, const ProtobufCFieldDescriptor *f, const cJSON *v, void *msg,
                         int depth)
{
    if (!cJSON_IsArray(v))
        return field_err(r, "expected an array", v);
    size_t count = (size_t)cJSON_GetArraySize(v);
    if (!count)
        return 0;
    size_t sz = elem_size(f->type);
    char *arr = azf__calloc(count, sz);
    if (!arr)
        return nomem(r);
    *MEMBER(msg, f->offset, char *) = arr;
    size_t *n = MEMBER(msg, f->quantifier_offset, size_t);
    for (const cJSON *it = v->child; it; it = it->next) {
        if (cJSON_IsNull(it))
            return field_err(r, "null inside an array", NULL);
        int rc = read_value(r, f, it, arr + *n * sz, depth);
        if (rc)
            return rc;
        (*n)++;
    }
    return 0;
}

static const ProtobufCFieldDescriptor *find_field(const ProtobufCMessageDescriptor *d,
                                                  const char *key)
{
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (f)
        return f;
    char name[256];
    for (unsigned i = 0; i < d->n_fields; i++) {
        json_name(d->fields[i].name, name, sizeof name);
        if (strcmp(name, key) == 0)
            return &d->fields[i];
    }
    return NULL;
}

static int read_fields(reader *r, const ProtobufCMessageDescriptor *d, const cJSON *obj,
                       ProtobufCMessage *m, uint8_t *seen, int depth)
{
    int in_map_entry = azf__codec_is_map_entry(d);
    for (const cJSON *it = obj->child; it; it = it->next) {
        const ProtobufCFieldDescriptor *f = find_field(d, it->string);
        r->msg = d;
        if (!f)
            return azf__err(r->err, AZF_E_PARSE, "unknown field \"%.200s\" in message %s",
                            it->string, d->name);
        r->field = f;
        unsigned idx = (unsigned)(f - d->fields);
        if (seen[idx])
            return field_err(r, "given more than once", NULL);
        seen[idx] = 1;
        if (cJSON_IsNull(it))
            continue; /* null means the default, as in json_format */
        int rc;
        r->may_hold = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = is_map(f) ? read_map(r, f, it, m, depth) : read_repeated(r, f, it, m, depth);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t *which = MEMBER(m, f->quantifier_offset, uint32_t);
            if (*which) {
                const ProtobufCFieldDescriptor *other =
                    protobuf_c_message_descriptor_get_field(d, *which);
                char what[320];
                snprintf(what, sizeof what, "a member of the same oneof (\"%s\") is already set",
                         other ? other->name : "?");
                return field_err(r, what, NULL);
            }
            r->may_hold = !in_map_entry;
            rc = read_value(r, f, it, MEMBER(m, f->offset, char), depth);
            if (!rc)
                *which = f->id;
        } else {
            r->may_hold = !in_map_entry;
            rc = read_value(r, f, it, MEMBER(m, f->offset, char), depth);
            if (!rc && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING &&
                f->type != PROTOBUF_C_TYPE_MESSAGE)
                *MEMBER(m, f->quantifier_offset, protobuf_c_boolean) = 1;
        }
        r->may_hold = 0;
        char **slot = MEMBER(m, f->offset, char *);
        if (!rc && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED &&
            r->nul_marks && *slot && strchr(*slot, NUL_MARK)) {
            size_t n = strlen(*slot);
            for (char *c = *slot; (c = strchr(c, NUL_MARK));) /* the marks back to NUL */
                *c++ = '\0';
            if ((rc = azf__codec_hold_string(m, f->id, slot, n)))
                return nomem(r);
        }
        if (rc)
            return rc;
    }
    return 0;
}

static int read_message(reader *r, const ProtobufCMessageDescriptor *d, const cJSON *obj,
                        ProtobufCMessage **out, int depth)
{
    if (!cJSON_IsObject(obj)) {
        if (r->field)
            return field_err(r, "expected an object", obj);
        return azf__err(r->err, AZF_E_PARSE, "message %s: expected a JSON object, got %s", d->name,
                        json_type(obj));
    }
    if (depth > AZF__CODEC_MAX_DEPTH)
        return azf__err(r->err, AZF_E_PARSE, "JSON for message %s nested deeper than %d levels",
                        d->name, AZF__CODEC_MAX_DEPTH);
    ProtobufCMessage *m = azf__malloc(d->sizeof_message);
    uint8_t *seen = azf__calloc(d->n_fields ? d->n_fields : 1, 1);
    if (!m || !seen) {
        azf__free(m);
        azf__free(seen);
        r->msg = d;
        return azf__err(r->err, AZF_E_NOMEM, "out of memory parsing JSON for message %s", d->name);
    }
    d->message_init(m);
    int rc = read_fields(r, d, obj, m, seen, depth);
    azf__free(seen);
    if (rc) {
        azf__codec_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* json with each \u0000 escape inside a string replaced by NUL_MARK (allocated; *n its
 * length), or NULL with *n = 0 when it has none (or out of memory: *n = 1). */
static char *mark_nuls(const char *json, size_t len, size_t *n)
{
    char *out = NULL;
    size_t k = 0;
    int in_string = 0;
    *n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = json[i];
        if (in_string && c == '\\' && i + 5 < len && memcmp(json + i + 1, "u0000", 5) == 0) {
            if (!out) { /* the first one: copy what came before */
                if (!(out = azf__malloc(len + 1))) {
                    *n = 1;
                    return NULL;
                }
                memcpy(out, json, k = i);
            }
            out[k++] = NUL_MARK;
            i += 5;
            continue;
        }
        if (in_string && c == '\\' && i + 1 < len) {
            if (out)
                out[k++] = c;
            c = json[++i];
        } else if (c == '"') {
            in_string = !in_string;
        }
        if (out)
            out[k++] = c;
    }
    if (out)
        *n = k;
    return out;
}

int azf__json_read(const ProtobufCMessageDescriptor *desc, const char *json, size_t len,
                   ProtobufCMessage **out, azf__errmsg *err)
{
    size_t marked_len;
    char *marked = mark_nuls(json, len, &marked_len);
    if (!marked && marked_len)
        return azf__err(err, AZF_E_NOMEM, "out of memory parsing JSON");
    if (marked && memchr(json, NUL_MARK, len)) {
        azf__free(marked);
        return azf__err(err, AZF_E_PARSE, "invalid UTF-8 in JSON (byte 0xff)");
    }
    const char *text = marked ? marked : json;
    size_t text_len = marked ? marked_len : len;
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, text_len, &end, 0);
    size_t at = end && end >= text && end <= text + text_len ? (size_t)(end - text) : 0;
    size_t marks = 0; /* for an offset in json: each mark was a 6-byte escape */
    for (size_t i = 0; marked && i < at; i++)
        marks += text[i] == NUL_MARK;
    at += 5 * marks;
    if (!root) {
        azf__free(marked);
        return azf__err(err, AZF_E_PARSE, "invalid JSON at byte %zu of %zu", at, len);
    }
    while (at < len &&
           (json[at] == ' ' || json[at] == '\t' || json[at] == '\r' || json[at] == '\n'))
        at++;
    azf__free(marked);
    if (at < len) {
        cJSON_Delete(root);
        return azf__err(err, AZF_E_PARSE, "unexpected data after the JSON value at byte %zu", at);
    }
    reader r = {err, desc, NULL, marked != NULL, 0};
    int rc = read_message(&r, desc, root, out, 1);
    cJSON_Delete(root);
    return rc;
}
