/* azf_value <-> protobuf-c TypedData. */
#include "marshal/marshal_pb.h"

#include <string.h>

/* ---- decoding --------------------------------------------------------------- */

static int data_from(azf_value **out, int kind, const void *p, size_t len, int flags)
{
    if (!p) {
        p = "";
        len = 0;
    }
    if (flags & AZF__MARSHAL_BORROW)
        return azf_value_adopt_data(out, kind, p, len, NULL, NULL);
    return azf_value_new_data(out, kind, p, len);
}

static const char *nstr(const AZF__PB(NullableString) * s)
{
    return s && s->string_case == AZF__PB_K(NULLABLE_STRING__STRING_VALUE) ? s->value : NULL;
}

/* Copies a non-empty proto3 string (empty means unset). */
static int set_if(int (*setter)(azf_value *, const char *), azf_value *v, const char *s)
{
    return s && *s ? setter(v, s) : 0;
}

#define DECODE_MAP(v, map, n_plain, plain, n_null, nullable)                                       \
    do {                                                                                           \
        if ((n_null) > 0) {                                                                        \
            for (size_t i_ = 0; i_ < (n_null); i_++)                                               \
                if ((rc = azf__http_append(v, map, (nullable)[i_]->key ? (nullable)[i_]->key : "", \
                                           nstr((nullable)[i_]->value))) != 0)                     \
                    goto fail;                                                                     \
        } else {                                                                                   \
            for (size_t i_ = 0; i_ < (n_plain); i_++)                                              \
                if ((rc = azf__http_append(v, map, (plain)[i_]->key ? (plain)[i_]->key : "",       \
                                           (plain)[i_]->value ? (plain)[i_]->value : "")) != 0)    \
                    goto fail;                                                                     \
        }                                                                                          \
    } while (0)

static int http_from(azf_value **out, const azf__pb_http *h, int flags, azf__errmsg *err)
{
    azf_value *v;
    int rc = azf_value_new_http(&v);
    if (rc)
        return rc;
    if ((rc = set_if(azf_value_http_set_method, v, h->method)) ||
        (rc = set_if(azf_value_http_set_url, v, h->url)) ||
        (rc = set_if(azf_value_http_set_status_code, v, h->status_code)))
        goto fail;
    /* A host with UseNullableValueDictionaryForHttp fills nullable_* and leaves the
     * plain maps empty; both shapes fold into one map with nullable values. */
    DECODE_MAP(v, AZF_HTTP_HEADERS, h->n_headers, h->headers, h->n_nullable_headers,
               h->nullable_headers);
    DECODE_MAP(v, AZF_HTTP_QUERY, h->n_query, h->query, h->n_nullable_query, h->nullable_query);
    DECODE_MAP(v, AZF_HTTP_PARAMS, h->n_params, h->params, h->n_nullable_params,
               h->nullable_params);
    v->u.http->content_negotiation = h->enable_content_negotiation != 0;
    /* rawBody only matters when the host sent no body (older capability sets). */
    const azf__pb_typed_data *body = h->body ? h->body : h->rawbody;
    if (body && body->data_case != AZF__PB_K(TYPED_DATA__DATA__NOT_SET)) {
        if ((rc = azf__value_from_pb(&v->u.http->body, body, flags, err)) != 0)
            goto fail;
    }
    for (size_t i = 0; i < h->n_cookies; i++) {
        const AZF__PB(RpcHttpCookie) *pc = h->cookies[i];
        azf_cookie *c;
        if ((rc = azf_cookie_new(&c, pc->name ? pc->name : "", pc->value ? pc->value : "")))
            goto fail;
        if ((rc = azf_cookie_set_domain(c, nstr(pc->domain))) ||
            (rc = azf_cookie_set_path(c, nstr(pc->path))) ||
            (rc = azf_value_http_add_cookie(v, c))) {
            azf_cookie_free(c);
            goto fail;
        }
        if (pc->expires &&
            pc->expires->timestamp_case == AZF__PB_K(NULLABLE_TIMESTAMP__TIMESTAMP_VALUE) &&
            pc->expires->value)
            azf_cookie_set_expires(c, pc->expires->value->seconds, pc->expires->value->nanos);
        if (pc->secure && pc->secure->bool_case == AZF__PB_K(NULLABLE_BOOL__BOOL_VALUE))
            azf_cookie_set_secure(c, pc->secure->value);
        if (pc->http_only && pc->http_only->bool_case == AZF__PB_K(NULLABLE_BOOL__BOOL_VALUE))
            azf_cookie_set_http_only(c, pc->http_only->value);
        if (pc->max_age && pc->max_age->double_case == AZF__PB_K(NULLABLE_DOUBLE__DOUBLE_VALUE))
            azf_cookie_set_max_age(c, pc->max_age->value);
        /* Unknown SameSite numbers from a newer host read as unset. */
        if (azf_cookie_set_same_site(c, (int)pc->same_site))
            azf_cookie_set_same_site(c, AZF_SAME_SITE_UNSET);
    }
    for (size_t i = 0; i < h->n_identities; i++) {
        const AZF__PB(RpcClaimsIdentity) *id = h->identities[i];
        rc = azf_value_http_add_identity(v, nstr(id->authentication_type),
                                         nstr(id->name_claim_type), nstr(id->role_claim_type));
        if (rc < 0)
            goto fail;
        size_t idx = (size_t)rc;
        for (size_t j = 0; j < id->n_claims; j++) {
            const AZF__PB(RpcClaim) *cl = id->claims[j];
            if ((rc = azf_value_http_add_claim(v, idx, cl->type ? cl->type : "",
                                               cl->value ? cl->value : "")))
                goto fail;
        }
    }
    *out = v;
    return 0;
fail:
    azf_value_free(v);
    return rc;
}

static int model_from(azf_value **out, const AZF__PB(ModelBindingData) * m)
{
    return azf_value_new_model_binding_data(out, m->version, m->source, m->content_type,
                                            m->content.data, m->content.len);
}

int azf__value_from_pb(azf_value **out, const azf__pb_typed_data *td, int flags, azf__errmsg *err)
{
    if (!out)
        return AZF_E_INVALID;
    if (!td)
        return azf_value_new_null(out);
    azf_value *v = NULL, *item;
    int rc = 0;
    switch (td->data_case) {
    case AZF__PB_K(TYPED_DATA__DATA__NOT_SET):
        return azf_value_new_null(out);
    case AZF__PB_TD(STRING):
        return data_from(out, AZF_VALUE_STRING, td->string, td->string ? strlen(td->string) : 0,
                         flags);
    case AZF__PB_TD(JSON):
        return data_from(out, AZF_VALUE_JSON, td->json, td->json ? strlen(td->json) : 0, flags);
    case AZF__PB_TD(BYTES):
        return data_from(out, AZF_VALUE_BYTES, td->bytes.data, td->bytes.len, flags);
    case AZF__PB_TD(STREAM):
        return data_from(out, AZF_VALUE_STREAM, td->stream.data, td->stream.len, flags);
    case AZF__PB_TD(INT):
        return azf_value_new_int(out, td->int_);
    case AZF__PB_TD(DOUBLE):
        return azf_value_new_double(out, td->double_);
    case AZF__PB_TD(HTTP):
        if (!td->http)
            return azf_value_new_http(out);
        return http_from(out, td->http, flags, err);
    case AZF__PB_TD(MODEL_BINDING_DATA):
        if (!td->model_binding_data)
            return azf_value_new_model_binding_data(out, NULL, NULL, NULL, NULL, 0);
        return model_from(out, td->model_binding_data);
    case AZF__PB_TD(COLLECTION_BYTES):
    case AZF__PB_TD(COLLECTION_STRING):
    case AZF__PB_TD(COLLECTION_DOUBLE):
    case AZF__PB_TD(COLLECTION_SINT64):
    case AZF__PB_TD(COLLECTION_MODEL_BINDING_DATA):
        break;
    default:
        return azf__err(err, AZF_E_PARSE, "TypedData member %d is not known", (int)td->data_case);
    }
    if ((rc = azf_value_new_collection(&v, (int)td->data_case)))
        return rc;
    size_t n = 0;
    switch (td->data_case) {
    case AZF__PB_TD(COLLECTION_BYTES):
        n = td->collection_bytes ? td->collection_bytes->n_bytes : 0;
        break;
    case AZF__PB_TD(COLLECTION_STRING):
        n = td->collection_string ? td->collection_string->n_string : 0;
        break;
    case AZF__PB_TD(COLLECTION_DOUBLE):
        n = td->collection_double ? td->collection_double->n_double_ : 0;
        break;
    case AZF__PB_TD(COLLECTION_SINT64):
        n = td->collection_sint64 ? td->collection_sint64->n_sint64 : 0;
        break;
    default:
        n = td->collection_model_binding_data
                ? td->collection_model_binding_data->n_model_binding_data
                : 0;
        break;
    }
    for (size_t i = 0; i < n; i++) {
        switch (td->data_case) {
        case AZF__PB_TD(COLLECTION_BYTES): {
            const ProtobufCBinaryData *b = &td->collection_bytes->bytes[i];
            rc = data_from(&item, AZF_VALUE_BYTES, b->data, b->len, flags);
            break;
        }
        case AZF__PB_TD(COLLECTION_STRING): {
            const char *s = td->collection_string->string[i];
            rc = data_from(&item, AZF_VALUE_STRING, s, s ? strlen(s) : 0, flags);
            break;
        }
        case AZF__PB_TD(COLLECTION_DOUBLE):
            rc = azf_value_new_double(&item, td->collection_double->double_[i]);
            break;
        case AZF__PB_TD(COLLECTION_SINT64):
            rc = azf_value_new_int(&item, td->collection_sint64->sint64[i]);
            break;
        default:
            rc = model_from(&item, td->collection_model_binding_data->model_binding_data[i]);
            break;
        }
        if (!rc && (rc = azf_value_collection_append(v, item)) != 0)
            azf_value_free(item);
        if (rc) {
            azf_value_free(v);
            return rc;
        }
    }
    *out = v;
    return 0;
}

int azf__value_from_pb_binding(azf_value **out, const azf__pb_binding *pb, int flags,
                               azf__errmsg *err)
{
    if (!out || !pb)
        return AZF_E_INVALID;
    if (pb->rpc_data_case == AZF__PB_K(PARAMETER_BINDING__RPC_DATA_RPC_SHARED_MEMORY))
        return azf__err(err, AZF_E_UNSUPPORTED,
                        "binding '%s' is in shared memory; resolve it before decoding",
                        pb->name ? pb->name : "");
    return azf__value_from_pb(
        out, pb->rpc_data_case == AZF__PB_K(PARAMETER_BINDING__RPC_DATA_DATA) ? pb->data : NULL,
        flags, err);
}

int azf__value_map_from_pb(azf_value_map **out, size_t n,
                           AZF__PB(InvocationRequest__TriggerMetadataEntry) *const *entries,
                           int flags, azf__errmsg *err)
{
    if (!out)
        return AZF_E_INVALID;
    azf_value_map *m;
    int rc = azf_value_map_new(&m);
    if (rc)
        return rc;
    for (size_t i = 0; i < n; i++) {
        azf_value *v;
        if ((rc = azf__value_from_pb(&v, entries[i]->value, flags, err)))
            break;
        if ((rc = azf_value_map_set(m, entries[i]->key ? entries[i]->key : "", v))) {
            azf_value_free(v);
            break;
        }
    }
    if (rc) {
        azf_value_map_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

/* ---- encoding ------------------------------------------------------------------ */

static char *cs(const char *s) /* protobuf-c wants char *; we never write through it */
{
    return (char *)(s ? s : "");
}

static AZF__PB(NullableString) * nullable_string(const char *s)
{
    if (!s)
        return NULL;
    AZF__PB(NullableString) *n = AZF__PB_NEW(NullableString, NULLABLE_STRING);
    if (n) {
        n->string_case = AZF__PB_K(NULLABLE_STRING__STRING_VALUE);
        n->value = cs(s);
    }
    return n;
}

/* Encodes one http map into the plain or the nullable field. Entries are allocated as
 * one array of structs plus the pointer array; see http_clear. */
#define ENCODE_MAP(list, T, INIT, NT, NINIT, n_plain, plain, n_null, nullable)                     \
    do {                                                                                           \
        size_t n_ = (list)->n;                                                                     \
        if (!n_)                                                                                   \
            break;                                                                                 \
        if (flags & AZF__MARSHAL_NULLABLE) {                                                       \
            AZF__PB(NT) *es_ = azf__calloc(n_, sizeof *es_);                                       \
            AZF__PB(NT) **ps_ = azf__calloc(n_, sizeof *ps_);                                      \
            if (!es_ || !ps_) {                                                                    \
                azf__free(es_);                                                                    \
                azf__free(ps_);                                                                    \
                return AZF_E_NOMEM;                                                                \
            }                                                                                      \
            (nullable) = ps_;                                                                      \
            (n_null) = n_;                                                                         \
            for (size_t i_ = 0; i_ < n_; i_++) {                                                   \
                es_[i_] = (AZF__PB(NT))AZF__PB_K(NINIT);                                           \
                es_[i_].key = cs((list)->v[i_].name);                                              \
                ps_[i_] = &es_[i_];                                                                \
            }                                                                                      \
            for (size_t i_ = 0; i_ < n_; i_++)                                                     \
                if ((list)->v[i_].value &&                                                         \
                    !(es_[i_].value = nullable_string((list)->v[i_].value)))                       \
                    return AZF_E_NOMEM;                                                            \
        } else {                                                                                   \
            AZF__PB(T) *es_ = azf__calloc(n_, sizeof *es_);                                        \
            AZF__PB(T) **ps_ = azf__calloc(n_, sizeof *ps_);                                       \
            if (!es_ || !ps_) {                                                                    \
                azf__free(es_);                                                                    \
                azf__free(ps_);                                                                    \
                return AZF_E_NOMEM;                                                                \
            }                                                                                      \
            (plain) = ps_;                                                                         \
            (n_plain) = n_;                                                                        \
            for (size_t i_ = 0; i_ < n_; i_++) {                                                   \
                es_[i_] = (AZF__PB(T))AZF__PB_K(INIT);                                             \
                es_[i_].key = cs((list)->v[i_].name);                                              \
                es_[i_].value = cs((list)->v[i_].value);                                           \
                ps_[i_] = &es_[i_];                                                                \
            }                                                                                      \
        }                                                                                          \
    } while (0)

/* Fills *ph; on failure the caller clears it (every allocation is already linked in). */
static int http_to(const azf__http *h, azf__pb_http *ph, int flags, azf__errmsg *err)
{
    ph->method = cs(h->method);
    ph->url = cs(h->url);
    ph->status_code = cs(h->status_code);
    ph->enable_content_negotiation = h->content_negotiation;
    ENCODE_MAP(&h->maps[AZF_HTTP_HEADERS], RpcHttp__HeadersEntry, RPC_HTTP__HEADERS_ENTRY__INIT,
               RpcHttp__NullableHeadersEntry, RPC_HTTP__NULLABLE_HEADERS_ENTRY__INIT, ph->n_headers,
               ph->headers, ph->n_nullable_headers, ph->nullable_headers);
    ENCODE_MAP(&h->maps[AZF_HTTP_QUERY], RpcHttp__QueryEntry, RPC_HTTP__QUERY_ENTRY__INIT,
               RpcHttp__NullableQueryEntry, RPC_HTTP__NULLABLE_QUERY_ENTRY__INIT, ph->n_query,
               ph->query, ph->n_nullable_query, ph->nullable_query);
    ENCODE_MAP(&h->maps[AZF_HTTP_PARAMS], RpcHttp__ParamsEntry, RPC_HTTP__PARAMS_ENTRY__INIT,
               RpcHttp__NullableParamsEntry, RPC_HTTP__NULLABLE_PARAMS_ENTRY__INIT, ph->n_params,
               ph->params, ph->n_nullable_params, ph->nullable_params);
    if (h->body) {
        if (!(ph->body = AZF__PB_NEW(TypedData, TYPED_DATA)))
            return AZF_E_NOMEM;
        /* The body of an http output is itself an output. */
        int rc = azf__value_to_pb(h->body, ph->body, flags, err);
        if (rc)
            return rc;
    }
    if (h->n_cookies) {
        if (!(ph->cookies = azf__calloc(h->n_cookies, sizeof *ph->cookies)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < h->n_cookies; i++) {
            const azf_cookie *c = h->cookies[i];
            AZF__PB(RpcHttpCookie) *pc = AZF__PB_NEW(RpcHttpCookie, RPC_HTTP_COOKIE);
            if (!pc)
                return AZF_E_NOMEM;
            ph->cookies[ph->n_cookies++] = pc;
            pc->name = cs(c->name);
            pc->value = cs(c->value);
            pc->same_site = (AZF__PB(RpcHttpCookie__SameSite))c->same_site;
            if ((c->domain && !(pc->domain = nullable_string(c->domain))) ||
                (c->path && !(pc->path = nullable_string(c->path))))
                return AZF_E_NOMEM;
            if (c->has_expires) {
                if (!(pc->expires = AZF__PB_NEW(NullableTimestamp, NULLABLE_TIMESTAMP)))
                    return AZF_E_NOMEM;
                if (!(pc->expires->value = AZF__PB_NEW(Timestamp, TIMESTAMP)))
                    return AZF_E_NOMEM;
                pc->expires->timestamp_case = AZF__PB_K(NULLABLE_TIMESTAMP__TIMESTAMP_VALUE);
                pc->expires->value->seconds = c->expires_s;
                pc->expires->value->nanos = c->expires_ns;
            }
            if (c->secure >= 0) {
                if (!(pc->secure = AZF__PB_NEW(NullableBool, NULLABLE_BOOL)))
                    return AZF_E_NOMEM;
                pc->secure->bool_case = AZF__PB_K(NULLABLE_BOOL__BOOL_VALUE);
                pc->secure->value = c->secure;
            }
            if (c->http_only >= 0) {
                if (!(pc->http_only = AZF__PB_NEW(NullableBool, NULLABLE_BOOL)))
                    return AZF_E_NOMEM;
                pc->http_only->bool_case = AZF__PB_K(NULLABLE_BOOL__BOOL_VALUE);
                pc->http_only->value = c->http_only;
            }
            if (c->has_max_age) {
                if (!(pc->max_age = AZF__PB_NEW(NullableDouble, NULLABLE_DOUBLE)))
                    return AZF_E_NOMEM;
                pc->max_age->double_case = AZF__PB_K(NULLABLE_DOUBLE__DOUBLE_VALUE);
                pc->max_age->value = c->max_age;
            }
        }
    }
    if (h->n_ids) {
        if (!(ph->identities = azf__calloc(h->n_ids, sizeof *ph->identities)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < h->n_ids; i++) {
            const azf__identity *id = &h->ids[i];
            AZF__PB(RpcClaimsIdentity) *pi = AZF__PB_NEW(RpcClaimsIdentity, RPC_CLAIMS_IDENTITY);
            if (!pi)
                return AZF_E_NOMEM;
            ph->identities[ph->n_identities++] = pi;
            if ((id->auth_type && !(pi->authentication_type = nullable_string(id->auth_type))) ||
                (id->name_claim_type &&
                 !(pi->name_claim_type = nullable_string(id->name_claim_type))) ||
                (id->role_claim_type &&
                 !(pi->role_claim_type = nullable_string(id->role_claim_type))))
                return AZF_E_NOMEM;
            if (id->claims.n) {
                AZF__PB(RpcClaim) *cl = azf__calloc(id->claims.n, sizeof *cl);
                AZF__PB(RpcClaim) **pcl = azf__calloc(id->claims.n, sizeof *pcl);
                if (!cl || !pcl) {
                    azf__free(cl);
                    azf__free(pcl);
                    return AZF_E_NOMEM;
                }
                pi->claims = pcl;
                pi->n_claims = id->claims.n;
                for (size_t j = 0; j < id->claims.n; j++) {
                    cl[j] = (AZF__PB(RpcClaim))AZF__PB_K(RPC_CLAIM__INIT);
                    cl[j].type = cs(id->claims.v[j].name);
                    cl[j].value = cs(id->claims.v[j].value);
                    pcl[j] = &cl[j];
                }
            }
        }
    }
    return 0;
}

static AZF__PB(ModelBindingData) * model_to(const azf_value *v)
{
    AZF__PB(ModelBindingData) *m = AZF__PB_NEW(ModelBindingData, MODEL_BINDING_DATA);
    if (m) {
        m->version = cs(v->u.model.version);
        m->source = cs(v->u.model.source);
        m->content_type = cs(v->u.model.content_type);
        m->content.data = (uint8_t *)v->u.model.content;
        m->content.len = v->u.model.content_len;
    }
    return m;
}

static int collection_to(const azf_value *v, azf__pb_typed_data *td)
{
    size_t n = v->u.coll.n;
    azf_value *const *it = v->u.coll.items;
    switch (v->kind) {
    case AZF_VALUE_COLLECTION_BYTES: {
        AZF__PB(CollectionBytes) *c = AZF__PB_NEW(CollectionBytes, COLLECTION_BYTES);
        if (!c)
            return AZF_E_NOMEM;
        td->collection_bytes = c;
        if (n && !(c->bytes = azf__calloc(n, sizeof *c->bytes)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            c->bytes[i].data = (uint8_t *)it[i]->u.data.ptr;
            c->bytes[i].len = it[i]->u.data.len;
        }
        c->n_bytes = n;
        break;
    }
    case AZF_VALUE_COLLECTION_STRING: {
        AZF__PB(CollectionString) *c = AZF__PB_NEW(CollectionString, COLLECTION_STRING);
        if (!c)
            return AZF_E_NOMEM;
        td->collection_string = c;
        if (n && !(c->string = azf__calloc(n, sizeof *c->string)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < n; i++)
            c->string[i] = cs(it[i]->u.data.ptr);
        c->n_string = n;
        break;
    }
    case AZF_VALUE_COLLECTION_DOUBLE: {
        AZF__PB(CollectionDouble) *c = AZF__PB_NEW(CollectionDouble, COLLECTION_DOUBLE);
        if (!c)
            return AZF_E_NOMEM;
        td->collection_double = c;
        if (n && !(c->double_ = azf__calloc(n, sizeof *c->double_)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < n; i++)
            c->double_[i] = it[i]->u.d;
        c->n_double_ = n;
        break;
    }
    case AZF_VALUE_COLLECTION_SINT64: {
        AZF__PB(CollectionSInt64) *c = AZF__PB_NEW(CollectionSInt64, COLLECTION_SINT64);
        if (!c)
            return AZF_E_NOMEM;
        td->collection_sint64 = c;
        if (n && !(c->sint64 = azf__calloc(n, sizeof *c->sint64)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < n; i++)
            c->sint64[i] = it[i]->u.i;
        c->n_sint64 = n;
        break;
    }
    default: {
        AZF__PB(CollectionModelBindingData) *c =
            AZF__PB_NEW(CollectionModelBindingData, COLLECTION_MODEL_BINDING_DATA);
        if (!c)
            return AZF_E_NOMEM;
        td->collection_model_binding_data = c;
        if (n && !(c->model_binding_data = azf__calloc(n, sizeof *c->model_binding_data)))
            return AZF_E_NOMEM;
        for (size_t i = 0; i < n; i++) {
            if (!(c->model_binding_data[i] = model_to(it[i])))
                return AZF_E_NOMEM;
            c->n_model_binding_data = i + 1;
        }
        break;
    }
    }
    return 0;
}

int azf__value_to_pb(const azf_value *v, azf__pb_typed_data *td, int flags, azf__errmsg *err)
{
    if (!td)
        return AZF_E_INVALID;
    td->data_case = AZF__PB_K(TYPED_DATA__DATA__NOT_SET);
    int kind = azf_value_kind(v);
    if ((flags & AZF__MARSHAL_OUTPUT) && !azf_value_kind_is_output(kind))
        return azf__err(err, AZF_E_UNSUPPORTED,
                        "a %s value cannot be an output: the host accepts only string, json, "
                        "bytes, stream, http, int and double",
                        azf_value_kind_name(kind));
    int rc = 0;
    switch (kind) {
    case AZF_VALUE_NULL:
        return 0;
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON: {
        const char *nul = v->u.data.len ? memchr(v->u.data.ptr, 0, v->u.data.len) : NULL;
        if (nul)
            return azf__err(err, AZF_E_INVALID,
                            "the %s holds a NUL character at offset %zu, which a protocol "
                            "string cannot carry (send bytes instead)",
                            azf_value_kind_name(kind), (size_t)(nul - (const char *)v->u.data.ptr));
        if (kind == AZF_VALUE_STRING)
            td->string = cs(v->u.data.ptr);
        else
            td->json = cs(v->u.data.ptr);
        break;
    }
    case AZF_VALUE_BYTES:
        td->bytes.data = (uint8_t *)v->u.data.ptr;
        td->bytes.len = v->u.data.len;
        break;
    case AZF_VALUE_STREAM:
        td->stream.data = (uint8_t *)v->u.data.ptr;
        td->stream.len = v->u.data.len;
        break;
    case AZF_VALUE_INT:
        td->int_ = v->u.i;
        break;
    case AZF_VALUE_DOUBLE:
        td->double_ = v->u.d;
        break;
    case AZF_VALUE_HTTP:
        td->http = AZF__PB_NEW(RpcHttp, RPC_HTTP);
        td->data_case = AZF__PB_TD(HTTP);
        rc = td->http ? http_to(v->u.http, td->http, flags, err) : AZF_E_NOMEM;
        break;
    case AZF_VALUE_MODEL_BINDING_DATA:
        td->data_case = AZF__PB_TD(MODEL_BINDING_DATA);
        rc = (td->model_binding_data = model_to(v)) ? 0 : AZF_E_NOMEM;
        break;
    default:
        td->data_case = (AZF__PB(TypedData__DataCase))kind;
        rc = collection_to(v, td);
        break;
    }
    if (rc) {
        azf__pb_typed_data_clear(td);
        return rc;
    }
    td->data_case = (AZF__PB(TypedData__DataCase))kind;
    return 0;
}

static void free_nullable(void *p)
{
    azf__free(p);
}

static void http_clear(azf__pb_http *h)
{
    /* Map entries are one struct array per map: freeing the first entry frees them all. */
    if (h->n_headers)
        azf__free(h->headers[0]);
    azf__free(h->headers);
    if (h->n_query)
        azf__free(h->query[0]);
    azf__free(h->query);
    if (h->n_params)
        azf__free(h->params[0]);
    azf__free(h->params);
#define CLEAR_NULLABLE(n, arr)                                                                     \
    do {                                                                                           \
        for (size_t i_ = 0; i_ < (n); i_++)                                                        \
            free_nullable((arr)[i_]->value);                                                       \
        if (n)                                                                                     \
            azf__free((arr)[0]);                                                                   \
        azf__free(arr);                                                                            \
    } while (0)
    CLEAR_NULLABLE(h->n_nullable_headers, h->nullable_headers);
    CLEAR_NULLABLE(h->n_nullable_query, h->nullable_query);
    CLEAR_NULLABLE(h->n_nullable_params, h->nullable_params);
    azf__pb_typed_data_free(h->body);
    for (size_t i = 0; i < h->n_cookies; i++) {
        AZF__PB(RpcHttpCookie) *c = h->cookies[i];
        azf__free(c->domain);
        azf__free(c->path);
        if (c->expires)
            azf__free(c->expires->value);
        azf__free(c->expires);
        azf__free(c->secure);
        azf__free(c->http_only);
        azf__free(c->max_age);
        azf__free(c);
    }
    azf__free(h->cookies);
    for (size_t i = 0; i < h->n_identities; i++) {
        AZF__PB(RpcClaimsIdentity) *id = h->identities[i];
        azf__free(id->authentication_type);
        azf__free(id->name_claim_type);
        azf__free(id->role_claim_type);
        if (id->n_claims)
            azf__free(id->claims[0]);
        azf__free(id->claims);
        azf__free(id);
    }
    azf__free(h->identities);
    azf__free(h);
}

void azf__pb_typed_data_clear(azf__pb_typed_data *td)
{
    if (!td)
        return;
    switch (td->data_case) {
    case AZF__PB_TD(HTTP):
        if (td->http)
            http_clear(td->http);
        break;
    case AZF__PB_TD(MODEL_BINDING_DATA):
        azf__free(td->model_binding_data);
        break;
    case AZF__PB_TD(COLLECTION_BYTES):
        if (td->collection_bytes)
            azf__free(td->collection_bytes->bytes);
        azf__free(td->collection_bytes);
        break;
    case AZF__PB_TD(COLLECTION_STRING):
        if (td->collection_string)
            azf__free(td->collection_string->string);
        azf__free(td->collection_string);
        break;
    case AZF__PB_TD(COLLECTION_DOUBLE):
        if (td->collection_double)
            azf__free(td->collection_double->double_);
        azf__free(td->collection_double);
        break;
    case AZF__PB_TD(COLLECTION_SINT64):
        if (td->collection_sint64)
            azf__free(td->collection_sint64->sint64);
        azf__free(td->collection_sint64);
        break;
    case AZF__PB_TD(COLLECTION_MODEL_BINDING_DATA):
        if (td->collection_model_binding_data) {
            AZF__PB(CollectionModelBindingData) *c = td->collection_model_binding_data;
            for (size_t i = 0; i < c->n_model_binding_data; i++)
                azf__free(c->model_binding_data[i]);
            azf__free(c->model_binding_data);
            azf__free(c);
        }
        break;
    default:
        break;
    }
    td->data_case = AZF__PB_K(TYPED_DATA__DATA__NOT_SET);
    memset(&td->bytes, 0, sizeof td->bytes);
}

int azf__value_to_pb_new(const azf_value *v, azf__pb_typed_data **out, int flags, azf__errmsg *err)
{
    azf__pb_typed_data *td = AZF__PB_NEW(TypedData, TYPED_DATA);
    if (!td)
        return AZF_E_NOMEM;
    int rc = azf__value_to_pb(v, td, flags, err);
    if (rc) {
        azf__free(td);
        return rc;
    }
    *out = td;
    return 0;
}

void azf__pb_typed_data_free(azf__pb_typed_data *td)
{
    if (!td)
        return;
    azf__pb_typed_data_clear(td);
    azf__free(td);
}
