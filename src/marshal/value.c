/* azf_value: construction, access, copy and free. */
#include "marshal/marshal_internal.h"

#include <strings.h>
#include <string.h>

static int is_data_kind(int kind)
{
    return kind == AZF_VALUE_STRING || kind == AZF_VALUE_JSON || kind == AZF_VALUE_BYTES ||
           kind == AZF_VALUE_STREAM;
}

static int is_collection_kind(int kind)
{
    return (kind >= AZF_VALUE_COLLECTION_BYTES && kind <= AZF_VALUE_COLLECTION_SINT64) ||
           kind == AZF_VALUE_COLLECTION_MODEL_BINDING_DATA;
}

const char *azf_value_kind_name(int kind)
{
    static const char *const names[] = {"null",
                                        "string",
                                        "json",
                                        "bytes",
                                        "stream",
                                        "http",
                                        "int",
                                        "double",
                                        "collection_bytes",
                                        "collection_string",
                                        "collection_double",
                                        "collection_sint64",
                                        "model_binding_data",
                                        "collection_model_binding_data"};
    if (kind < 0 || kind > AZF_VALUE_COLLECTION_MODEL_BINDING_DATA)
        return "unknown";
    return names[kind];
}

int azf_value_kind_is_output(int kind)
{
    return kind >= AZF_VALUE_NULL && kind <= AZF_VALUE_DOUBLE;
}

int azf__grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap * 2 : 4;
    while (n < need)
        n *= 2;
    if (n > SIZE_MAX / elem)
        return AZF_E_NOMEM;
    void *p = azf__realloc(*arr, n * elem);
    if (!p)
        return AZF_E_NOMEM;
    *arr = p;
    *cap = n;
    return 0;
}

static azf_value *alloc_value(int kind, size_t extra)
{
    azf_value *v = azf__malloc(sizeof *v + extra);
    if (v) {
        memset(v, 0, sizeof *v);
        v->kind = kind;
    }
    return v;
}

int azf_value_new_null(azf_value **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_value *v = alloc_value(AZF_VALUE_NULL, 0);
    if (!v)
        return AZF_E_NOMEM;
    *out = v;
    return 0;
}

int azf_value_new_int(azf_value **out, int64_t i)
{
    if (!out)
        return AZF_E_INVALID;
    azf_value *v = alloc_value(AZF_VALUE_INT, 0);
    if (!v)
        return AZF_E_NOMEM;
    v->u.i = i;
    *out = v;
    return 0;
}

int azf_value_new_double(azf_value **out, double d)
{
    if (!out)
        return AZF_E_INVALID;
    azf_value *v = alloc_value(AZF_VALUE_DOUBLE, 0);
    if (!v)
        return AZF_E_NOMEM;
    v->u.d = d;
    *out = v;
    return 0;
}

int azf_value_new_data(azf_value **out, int kind, const void *data, size_t len)
{
    if (!out || !is_data_kind(kind) || (!data && len) || len > SIZE_MAX - sizeof(azf_value) - 1)
        return AZF_E_INVALID;
    /* One allocation: the struct with the bytes behind it. */
    azf_value *v = alloc_value(kind, len + 1);
    if (!v)
        return AZF_E_NOMEM;
    if (len)
        memcpy(v->inline_data, data, len);
    v->inline_data[len] = '\0';
    v->u.data.ptr = v->inline_data;
    v->u.data.len = len;
    *out = v;
    return 0;
}

int azf_value_new_string(azf_value **out, const char *s)
{
    if (!s)
        return AZF_E_INVALID;
    return azf_value_new_data(out, AZF_VALUE_STRING, s, strlen(s));
}

int azf_value_adopt_data(azf_value **out, int kind, const void *data, size_t len,
                         azf_release_fn release, void *user_data)
{
    if (!out || !is_data_kind(kind) || (!data && len))
        return AZF_E_INVALID;
    if ((kind == AZF_VALUE_STRING || kind == AZF_VALUE_JSON) &&
        (!data || ((const char *)data)[len] != '\0'))
        return AZF_E_INVALID;
    azf_value *v = alloc_value(kind, 0);
    if (!v)
        return AZF_E_NOMEM;
    v->u.data.ptr = data ? data : "";
    v->u.data.len = len;
    v->u.data.release = release;
    v->u.data.release_ud = user_data;
    v->u.data.release_ptr = (void *)data;
    *out = v;
    return 0;
}

int azf_value_new_collection(azf_value **out, int kind)
{
    if (!out || !is_collection_kind(kind))
        return AZF_E_INVALID;
    azf_value *v = alloc_value(kind, 0);
    if (!v)
        return AZF_E_NOMEM;
    *out = v;
    return 0;
}

static int item_kind_ok(int coll, int item)
{
    switch (coll) {
    case AZF_VALUE_COLLECTION_BYTES:
        return item == AZF_VALUE_BYTES || item == AZF_VALUE_STREAM;
    case AZF_VALUE_COLLECTION_STRING:
        return item == AZF_VALUE_STRING;
    case AZF_VALUE_COLLECTION_DOUBLE:
        return item == AZF_VALUE_DOUBLE;
    case AZF_VALUE_COLLECTION_SINT64:
        return item == AZF_VALUE_INT;
    case AZF_VALUE_COLLECTION_MODEL_BINDING_DATA:
        return item == AZF_VALUE_MODEL_BINDING_DATA;
    default:
        return 0;
    }
}

int azf_value_collection_append(azf_value *coll, azf_value *item)
{
    if (!coll || !item || !item_kind_ok(coll->kind, item->kind))
        return AZF_E_INVALID;
    if (azf__grow((void **)&coll->u.coll.items, &coll->u.coll.cap, coll->u.coll.n + 1,
                  sizeof(azf_value *)))
        return AZF_E_NOMEM;
    coll->u.coll.items[coll->u.coll.n++] = item;
    return 0;
}

int azf_value_new_model_binding_data(azf_value **out, const char *version, const char *source,
                                     const char *content_type, const void *content,
                                     size_t content_len)
{
    if (!out || (!content && content_len))
        return AZF_E_INVALID;
    const char *s[3] = {version ? version : "", source ? source : "",
                        content_type ? content_type : ""};
    size_t l[3] = {strlen(s[0]), strlen(s[1]), strlen(s[2])};
    if (content_len > SIZE_MAX / 2)
        return AZF_E_INVALID;
    /* One allocation: three strings and the content behind the struct. */
    azf_value *v = alloc_value(AZF_VALUE_MODEL_BINDING_DATA, l[0] + l[1] + l[2] + 4 + content_len);
    if (!v)
        return AZF_E_NOMEM;
    char *p = v->inline_data;
    char **dst[3] = {&v->u.model.version, &v->u.model.source, &v->u.model.content_type};
    for (int i = 0; i < 3; i++) {
        memcpy(p, s[i], l[i] + 1);
        *dst[i] = p;
        p += l[i] + 1;
    }
    if (content_len)
        memcpy(p, content, content_len);
    p[content_len] = '\0';
    v->u.model.content = p;
    v->u.model.content_len = content_len;
    *out = v;
    return 0;
}

int azf_value_new_http(azf_value **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_value *v = alloc_value(AZF_VALUE_HTTP, sizeof(azf__http));
    if (!v)
        return AZF_E_NOMEM;
    v->u.http = (azf__http *)(void *)v->inline_data;
    memset(v->u.http, 0, sizeof *v->u.http);
    *out = v;
    return 0;
}

static void kvlist_clear(azf__kvlist *l)
{
    for (size_t i = 0; i < l->n; i++) {
        azf__free(l->v[i].name);
        azf__free(l->v[i].value);
    }
    azf__free(l->v);
    memset(l, 0, sizeof *l);
}

static void http_clear(azf__http *h)
{
    azf__free(h->method);
    azf__free(h->url);
    azf__free(h->status_code);
    for (int i = 0; i < 3; i++)
        kvlist_clear(&h->maps[i]);
    azf_value_free(h->body);
    for (size_t i = 0; i < h->n_cookies; i++)
        azf_cookie_free(h->cookies[i]);
    azf__free(h->cookies);
    for (size_t i = 0; i < h->n_ids; i++) {
        azf__free(h->ids[i].auth_type);
        azf__free(h->ids[i].name_claim_type);
        azf__free(h->ids[i].role_claim_type);
        kvlist_clear(&h->ids[i].claims);
    }
    azf__free(h->ids);
}

void azf_value_free(azf_value *v)
{
    if (!v)
        return;
    if (is_data_kind(v->kind)) {
        if (v->u.data.release)
            v->u.data.release(v->u.data.release_ptr, v->u.data.release_ud);
    } else if (is_collection_kind(v->kind)) {
        for (size_t i = 0; i < v->u.coll.n; i++)
            azf_value_free(v->u.coll.items[i]);
        azf__free(v->u.coll.items);
    } else if (v->kind == AZF_VALUE_HTTP) {
        http_clear(v->u.http);
    }
    azf__free(v);
}

/* ---- reading ---------------------------------------------------------------- */

int azf_value_kind(const azf_value *v)
{
    return v ? v->kind : AZF_VALUE_NULL;
}

const void *azf_value_data(const azf_value *v, size_t *len)
{
    if (!v || !is_data_kind(v->kind)) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = v->u.data.len;
    return v->u.data.ptr;
}

int64_t azf_value_int(const azf_value *v)
{
    return v && v->kind == AZF_VALUE_INT ? v->u.i : 0;
}

double azf_value_double(const azf_value *v)
{
    return v && v->kind == AZF_VALUE_DOUBLE ? v->u.d : 0.0;
}

size_t azf_value_count(const azf_value *v)
{
    return v && is_collection_kind(v->kind) ? v->u.coll.n : 0;
}

const azf_value *azf_value_item(const azf_value *v, size_t i)
{
    return i < azf_value_count(v) ? v->u.coll.items[i] : NULL;
}

#define MODEL(v) ((v) && (v)->kind == AZF_VALUE_MODEL_BINDING_DATA)

const char *azf_value_model_version(const azf_value *v)
{
    return MODEL(v) ? v->u.model.version : NULL;
}
const char *azf_value_model_source(const azf_value *v)
{
    return MODEL(v) ? v->u.model.source : NULL;
}
const char *azf_value_model_content_type(const azf_value *v)
{
    return MODEL(v) ? v->u.model.content_type : NULL;
}
const void *azf_value_model_content(const azf_value *v, size_t *len)
{
    if (len)
        *len = MODEL(v) ? v->u.model.content_len : 0;
    return MODEL(v) ? v->u.model.content : NULL;
}

/* ---- copy ----------------------------------------------------------------- */

static int http_copy(azf_value *dst, const azf__http *h);

int azf_value_copy(azf_value **out, const azf_value *v)
{
    if (!out || !v)
        return AZF_E_INVALID;
    azf_value *c = NULL;
    int rc;
    switch (v->kind) {
    case AZF_VALUE_NULL:
        rc = azf_value_new_null(&c);
        break;
    case AZF_VALUE_INT:
        rc = azf_value_new_int(&c, v->u.i);
        break;
    case AZF_VALUE_DOUBLE:
        rc = azf_value_new_double(&c, v->u.d);
        break;
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM:
        rc = azf_value_new_data(&c, v->kind, v->u.data.ptr, v->u.data.len);
        break;
    case AZF_VALUE_MODEL_BINDING_DATA:
        rc = azf_value_new_model_binding_data(&c, v->u.model.version, v->u.model.source,
                                              v->u.model.content_type, v->u.model.content,
                                              v->u.model.content_len);
        break;
    case AZF_VALUE_HTTP:
        rc = azf_value_new_http(&c);
        if (!rc && (rc = http_copy(c, v->u.http)) != 0) {
            azf_value_free(c);
            c = NULL;
        }
        break;
    default:
        rc = azf_value_new_collection(&c, v->kind);
        for (size_t i = 0; !rc && i < v->u.coll.n; i++) {
            azf_value *item;
            rc = azf_value_copy(&item, v->u.coll.items[i]);
            if (!rc && (rc = azf_value_collection_append(c, item)) != 0)
                azf_value_free(item);
        }
        if (rc) {
            azf_value_free(c);
            c = NULL;
        }
        break;
    }
    if (rc)
        return rc;
    *out = c;
    return 0;
}

/* ---- HTTP ------------------------------------------------------------------ */

#define HTTP(v) ((v) && (v)->kind == AZF_VALUE_HTTP ? (v)->u.http : NULL)

/* Replaces *dst with a copy of s (NULL clears). */
static int set_str(char **dst, const char *s)
{
    char *c = NULL;
    if (s && !(c = azf__strdup(s)))
        return AZF_E_NOMEM;
    azf__free(*dst);
    *dst = c;
    return 0;
}

int azf_value_http_set_method(azf_value *v, const char *s)
{
    return HTTP(v) ? set_str(&v->u.http->method, s) : AZF_E_INVALID;
}
int azf_value_http_set_url(azf_value *v, const char *s)
{
    return HTTP(v) ? set_str(&v->u.http->url, s) : AZF_E_INVALID;
}
int azf_value_http_set_status_code(azf_value *v, const char *s)
{
    return HTTP(v) ? set_str(&v->u.http->status_code, s) : AZF_E_INVALID;
}
int azf_value_http_set_content_negotiation(azf_value *v, int enable)
{
    if (!HTTP(v))
        return AZF_E_INVALID;
    v->u.http->content_negotiation = enable != 0;
    return 0;
}
int azf_value_http_set_body(azf_value *v, azf_value *body)
{
    if (!HTTP(v) || body == v)
        return AZF_E_INVALID;
    azf_value_free(v->u.http->body);
    v->u.http->body = body;
    return 0;
}

const char *azf_value_http_method(const azf_value *v)
{
    return HTTP(v) ? v->u.http->method : NULL;
}
const char *azf_value_http_url(const azf_value *v)
{
    return HTTP(v) ? v->u.http->url : NULL;
}
const char *azf_value_http_status_code(const azf_value *v)
{
    return HTTP(v) ? v->u.http->status_code : NULL;
}
int azf_value_http_content_negotiation(const azf_value *v)
{
    return HTTP(v) ? v->u.http->content_negotiation : 0;
}
const azf_value *azf_value_http_body(const azf_value *v)
{
    return HTTP(v) ? v->u.http->body : NULL;
}

static azf__kvlist *http_map(const azf_value *v, int map)
{
    if (!HTTP(v) || map < AZF_HTTP_HEADERS || map > AZF_HTTP_PARAMS)
        return NULL;
    return &v->u.http->maps[map];
}

static ptrdiff_t kv_find(const azf__kvlist *l, const char *name, int icase)
{
    for (size_t i = 0; i < l->n; i++)
        if ((icase ? strcasecmp : strcmp)(l->v[i].name, name) == 0)
            return (ptrdiff_t)i;
    return -1;
}

/* Appends or replaces an entry; strings copied. */
static int kv_set(azf__kvlist *l, const char *name, const char *value, int icase, int append)
{
    ptrdiff_t at = append ? -1 : kv_find(l, name, icase);
    char *val = NULL;
    if (value && !(val = azf__strdup(value)))
        return AZF_E_NOMEM;
    if (at >= 0) {
        azf__free(l->v[at].value);
        l->v[at].value = val;
        return 0;
    }
    char *nm = azf__strdup(name);
    if (!nm || azf__grow((void **)&l->v, &l->cap, l->n + 1, sizeof *l->v)) {
        azf__free(nm);
        azf__free(val);
        return AZF_E_NOMEM;
    }
    l->v[l->n].name = nm;
    l->v[l->n].value = val;
    l->n++;
    return 0;
}

int azf_value_http_set(azf_value *v, int map, const char *name, const char *value)
{
    azf__kvlist *l = http_map(v, map);
    if (!l || !name)
        return AZF_E_INVALID;
    return kv_set(l, name, value, map == AZF_HTTP_HEADERS, 0);
}

size_t azf_value_http_count(const azf_value *v, int map)
{
    azf__kvlist *l = http_map(v, map);
    return l ? l->n : 0;
}

int azf_value_http_get(const azf_value *v, int map, const char *name, const char **value)
{
    azf__kvlist *l = http_map(v, map);
    if (!l || !name)
        return AZF_E_INVALID;
    ptrdiff_t at = kv_find(l, name, map == AZF_HTTP_HEADERS);
    if (at < 0)
        return 0;
    if (value)
        *value = l->v[at].value;
    return 1;
}

const char *azf_value_http_entry(const azf_value *v, int map, size_t i, const char **value)
{
    azf__kvlist *l = http_map(v, map);
    if (!l || i >= l->n)
        return NULL;
    if (value)
        *value = l->v[i].value;
    return l->v[i].name;
}

int azf_value_http_add_cookie(azf_value *v, azf_cookie *c)
{
    azf__http *h = HTTP(v);
    if (!h || !c)
        return AZF_E_INVALID;
    if (azf__grow((void **)&h->cookies, &h->cap_cookies, h->n_cookies + 1, sizeof *h->cookies))
        return AZF_E_NOMEM;
    h->cookies[h->n_cookies++] = c;
    return 0;
}

size_t azf_value_http_cookie_count(const azf_value *v)
{
    return HTTP(v) ? v->u.http->n_cookies : 0;
}

const azf_cookie *azf_value_http_cookie(const azf_value *v, size_t i)
{
    return i < azf_value_http_cookie_count(v) ? v->u.http->cookies[i] : NULL;
}

int azf_value_http_add_identity(azf_value *v, const char *auth_type, const char *name_claim_type,
                                const char *role_claim_type)
{
    azf__http *h = HTTP(v);
    if (!h || h->n_ids >= 0x7fffffff)
        return AZF_E_INVALID;
    if (azf__grow((void **)&h->ids, &h->cap_ids, h->n_ids + 1, sizeof *h->ids))
        return AZF_E_NOMEM;
    azf__identity id;
    memset(&id, 0, sizeof id);
    if (set_str(&id.auth_type, auth_type) || set_str(&id.name_claim_type, name_claim_type) ||
        set_str(&id.role_claim_type, role_claim_type)) {
        azf__free(id.auth_type);
        azf__free(id.name_claim_type);
        azf__free(id.role_claim_type);
        return AZF_E_NOMEM;
    }
    h->ids[h->n_ids] = id;
    return (int)h->n_ids++;
}

int azf_value_http_add_claim(azf_value *v, size_t identity, const char *type, const char *value)
{
    azf__http *h = HTTP(v);
    if (!h || identity >= h->n_ids || !type || !value)
        return AZF_E_INVALID;
    return kv_set(&h->ids[identity].claims, type, value, 0, 1);
}

size_t azf_value_http_identity_count(const azf_value *v)
{
    return HTTP(v) ? v->u.http->n_ids : 0;
}

int azf_value_http_identity(const azf_value *v, size_t i, const char **auth_type,
                            const char **name_claim_type, const char **role_claim_type)
{
    if (i >= azf_value_http_identity_count(v))
        return AZF_E_INVALID;
    const azf__identity *id = &v->u.http->ids[i];
    if (auth_type)
        *auth_type = id->auth_type;
    if (name_claim_type)
        *name_claim_type = id->name_claim_type;
    if (role_claim_type)
        *role_claim_type = id->role_claim_type;
    return 0;
}

size_t azf_value_http_claim_count(const azf_value *v, size_t identity)
{
    if (identity >= azf_value_http_identity_count(v))
        return 0;
    return v->u.http->ids[identity].claims.n;
}

int azf_value_http_claim(const azf_value *v, size_t identity, size_t i, const char **type,
                         const char **value)
{
    if (i >= azf_value_http_claim_count(v, identity))
        return AZF_E_INVALID;
    const azf__kv *kv = &v->u.http->ids[identity].claims.v[i];
    if (type)
        *type = kv->name;
    if (value)
        *value = kv->value;
    return 0;
}

static int cookie_copy(azf_cookie **out, const azf_cookie *c)
{
    azf_cookie *n;
    int rc = azf_cookie_new(&n, c->name, c->value);
    if (rc)
        return rc;
    if (set_str(&n->domain, c->domain) || set_str(&n->path, c->path)) {
        azf_cookie_free(n);
        return AZF_E_NOMEM;
    }
    n->has_expires = c->has_expires;
    n->expires_s = c->expires_s;
    n->expires_ns = c->expires_ns;
    n->secure = c->secure;
    n->http_only = c->http_only;
    n->same_site = c->same_site;
    n->has_max_age = c->has_max_age;
    n->max_age = c->max_age;
    *out = n;
    return 0;
}

static int http_copy(azf_value *dst, const azf__http *h)
{
    azf__http *d = dst->u.http;
    if (set_str(&d->method, h->method) || set_str(&d->url, h->url) ||
        set_str(&d->status_code, h->status_code))
        return AZF_E_NOMEM;
    d->content_negotiation = h->content_negotiation;
    for (int m = 0; m < 3; m++)
        for (size_t i = 0; i < h->maps[m].n; i++)
            if (kv_set(&d->maps[m], h->maps[m].v[i].name, h->maps[m].v[i].value, 0, 1))
                return AZF_E_NOMEM;
    if (h->body) {
        int rc = azf_value_copy(&d->body, h->body);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < h->n_cookies; i++) {
        azf_cookie *c;
        int rc = cookie_copy(&c, h->cookies[i]);
        if (!rc && (rc = azf_value_http_add_cookie(dst, c)) != 0)
            azf_cookie_free(c);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < h->n_ids; i++) {
        const azf__identity *id = &h->ids[i];
        int idx = azf_value_http_add_identity(dst, id->auth_type, id->name_claim_type,
                                              id->role_claim_type);
        if (idx < 0)
            return idx;
        for (size_t j = 0; j < id->claims.n; j++)
            if (kv_set(&d->ids[idx].claims, id->claims.v[j].name, id->claims.v[j].value, 0, 1))
                return AZF_E_NOMEM;
    }
    return 0;
}

/* Appends a decoded entry without the replace lookup (the wire map has unique keys). */
int azf__http_append(azf_value *v, int map, const char *name, const char *value)
{
    return kv_set(&v->u.http->maps[map], name, value, 0, 1);
}

/* ---- cookies ----------------------------------------------------------------- */

int azf_cookie_new(azf_cookie **out, const char *name, const char *value)
{
    if (!out || !name || !value)
        return AZF_E_INVALID;
    azf_cookie *c = azf__calloc(1, sizeof *c);
    if (!c)
        return AZF_E_NOMEM;
    c->secure = -1;
    c->http_only = -1;
    if (!(c->name = azf__strdup(name)) || !(c->value = azf__strdup(value))) {
        azf_cookie_free(c);
        return AZF_E_NOMEM;
    }
    *out = c;
    return 0;
}

void azf_cookie_free(azf_cookie *c)
{
    if (!c)
        return;
    azf__free(c->name);
    azf__free(c->value);
    azf__free(c->domain);
    azf__free(c->path);
    azf__free(c);
}

int azf_cookie_set_domain(azf_cookie *c, const char *s)
{
    return c ? set_str(&c->domain, s) : AZF_E_INVALID;
}
int azf_cookie_set_path(azf_cookie *c, const char *s)
{
    return c ? set_str(&c->path, s) : AZF_E_INVALID;
}
int azf_cookie_set_expires(azf_cookie *c, int64_t seconds, int32_t nanos)
{
    if (!c)
        return AZF_E_INVALID;
    c->has_expires = 1;
    c->expires_s = seconds;
    c->expires_ns = nanos;
    return 0;
}
int azf_cookie_set_secure(azf_cookie *c, int secure)
{
    if (!c)
        return AZF_E_INVALID;
    c->secure = secure != 0;
    return 0;
}
int azf_cookie_set_http_only(azf_cookie *c, int http_only)
{
    if (!c)
        return AZF_E_INVALID;
    c->http_only = http_only != 0;
    return 0;
}
int azf_cookie_set_same_site(azf_cookie *c, int same_site)
{
    if (!c || same_site < AZF_SAME_SITE_UNSET || same_site > AZF_SAME_SITE_NONE)
        return AZF_E_INVALID;
    c->same_site = same_site;
    return 0;
}
int azf_cookie_set_max_age(azf_cookie *c, double seconds)
{
    if (!c)
        return AZF_E_INVALID;
    c->has_max_age = 1;
    c->max_age = seconds;
    return 0;
}

const char *azf_cookie_name(const azf_cookie *c)
{
    return c ? c->name : NULL;
}
const char *azf_cookie_value(const azf_cookie *c)
{
    return c ? c->value : NULL;
}
const char *azf_cookie_domain(const azf_cookie *c)
{
    return c ? c->domain : NULL;
}
const char *azf_cookie_path(const azf_cookie *c)
{
    return c ? c->path : NULL;
}
int azf_cookie_expires(const azf_cookie *c, int64_t *seconds, int32_t *nanos)
{
    if (!c || !c->has_expires)
        return 0;
    if (seconds)
        *seconds = c->expires_s;
    if (nanos)
        *nanos = c->expires_ns;
    return 1;
}
int azf_cookie_secure(const azf_cookie *c)
{
    return c ? c->secure : -1;
}
int azf_cookie_http_only(const azf_cookie *c)
{
    return c ? c->http_only : -1;
}
int azf_cookie_same_site(const azf_cookie *c)
{
    return c ? c->same_site : 0;
}
int azf_cookie_max_age(const azf_cookie *c, double *seconds)
{
    if (!c || !c->has_max_age)
        return 0;
    if (seconds)
        *seconds = c->max_age;
    return 1;
}

/* ---- maps -------------------------------------------------------------------- */

int azf_value_map_new(azf_value_map **out)
{
    if (!out)
        return AZF_E_INVALID;
    azf_value_map *m = azf__calloc(1, sizeof *m);
    if (!m)
        return AZF_E_NOMEM;
    *out = m;
    return 0;
}

void azf__value_map_clear(azf_value_map *m)
{
    for (size_t i = 0; i < m->n; i++) {
        azf__free(m->e[i].key);
        azf_value_free(m->e[i].value);
    }
    m->n = 0;
    azf__free(m->slots);
    m->slots = NULL;
    m->nslots = 0;
}

void azf_value_map_free(azf_value_map *m)
{
    if (!m)
        return;
    azf__value_map_clear(m);
    azf__free(m->e);
    azf__free(m);
}

/* Up to this many entries a map is scanned; past it, it is indexed. */
#define MAP_SCAN_MAX 8

static size_t key_hash(const char *key)
{
    uint64_t h = 14695981039346656037u; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211u;
    return (size_t)h;
}

/* The entry of `key`, or -1; *slot: where the index has it or would put it. */
static ptrdiff_t map_find(const azf_value_map *m, const char *key, size_t *slot)
{
    if (!m->slots) {
        for (size_t i = 0; i < m->n; i++)
            if (strcmp(m->e[i].key, key) == 0)
                return (ptrdiff_t)i;
        return -1;
    }
    size_t mask = m->nslots - 1;
    for (size_t i = key_hash(key) & mask;; i = (i + 1) & mask) {
        size_t s = m->slots[i];
        if (!s || strcmp(m->e[s - 1].key, key) == 0) {
            *slot = i;
            return (ptrdiff_t)s - 1;
        }
    }
}

/* Makes the index hold `need` entries at most half full (rebuilt in a new size). */
static int map_reserve(azf_value_map *m, size_t need)
{
    if (need <= MAP_SCAN_MAX || (m->slots && 2 * need < m->nslots))
        return 0;
    size_t nslots = m->nslots ? m->nslots : 4 * MAP_SCAN_MAX;
    while (2 * need >= nslots)
        nslots *= 2;
    size_t *slots = azf__calloc(nslots, sizeof *slots);
    if (!slots)
        return AZF_E_NOMEM;
    for (size_t k = 0; k < m->n; k++) {
        size_t i = key_hash(m->e[k].key) & (nslots - 1);
        while (slots[i])
            i = (i + 1) & (nslots - 1);
        slots[i] = k + 1;
    }
    azf__free(m->slots);
    m->slots = slots;
    m->nslots = nslots;
    return 0;
}

int azf_value_map_set(azf_value_map *m, const char *key, azf_value *v)
{
    if (!m || !key || !v)
        return AZF_E_INVALID;
    size_t slot = 0;
    ptrdiff_t at = map_find(m, key, &slot);
    if (at >= 0) {
        if (m->e[at].value != v)
            azf_value_free(m->e[at].value);
        m->e[at].value = v;
        return 0;
    }
    char *k = azf__strdup(key);
    if (!k || azf__grow((void **)&m->e, &m->cap, m->n + 1, sizeof *m->e) ||
        map_reserve(m, m->n + 1)) {
        azf__free(k);
        return AZF_E_NOMEM;
    }
    m->e[m->n].key = k;
    m->e[m->n].value = v;
    m->n++;
    if (m->slots && map_find(m, k, &slot) < 0) /* found again: the index may be new */
        m->slots[slot] = m->n;
    return 0;
}

const azf_value *azf_value_map_get(const azf_value_map *m, const char *key)
{
    if (!m || !key)
        return NULL;
    size_t slot;
    ptrdiff_t at = map_find(m, key, &slot);
    return at >= 0 ? m->e[at].value : NULL;
}

size_t azf_value_map_count(const azf_value_map *m)
{
    return m ? m->n : 0;
}

const azf_value *azf_value_map_at(const azf_value_map *m, size_t i, const char **key)
{
    if (!m || i >= m->n)
        return NULL;
    if (key)
        *key = m->e[i].key;
    return m->e[i].value;
}
