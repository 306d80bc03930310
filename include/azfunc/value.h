/* libazfunc — marshal layer: azf_value, the language-neutral form of a binding value.
 *
 * An azf_value holds exactly one of the TypedData members of the FunctionRpc protocol
 * (string, json, bytes, stream, http, int, double, the collections and model binding
 * data) or null. The kind numbers are the TypedData field numbers.
 *
 * Ownership: a value has a single owner. Functions that take an `azf_value *` (not
 * const) as a child *take ownership on success*; on failure the caller still owns it.
 * Strings passed as `const char *` are copied unless stated otherwise.
 *
 * Thread safety: a value (and a map, a cookie) is used by one thread at a time and may
 * move between threads. Several threads may read (const accessors only) the same value
 * at once while nobody modifies it.
 *
 * Errors: functions returning int give 0 or a negative AZF_E_* code:
 * AZF_E_INVALID (NULL argument, wrong kind, bad index), AZF_E_NOMEM.
 */
#ifndef AZFUNC_VALUE_H
#define AZFUNC_VALUE_H

#include "azfunc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct azf_value azf_value;
typedef struct azf_value_map azf_value_map;
typedef struct azf_cookie azf_cookie;

/* Value kinds: the TypedData field numbers (0: no member set, i.e. null). */
enum {
    AZF_VALUE_NULL = 0,
    AZF_VALUE_STRING = 1, /* UTF-8 text */
    AZF_VALUE_JSON = 2,   /* JSON text */
    AZF_VALUE_BYTES = 3,
    AZF_VALUE_STREAM = 4, /* bytes the host calls a stream */
    AZF_VALUE_HTTP = 5,   /* an HTTP request or response */
    AZF_VALUE_INT = 6,    /* int64 (sint64 on the wire) */
    AZF_VALUE_DOUBLE = 7,
    AZF_VALUE_COLLECTION_BYTES = 8,
    AZF_VALUE_COLLECTION_STRING = 9,
    AZF_VALUE_COLLECTION_DOUBLE = 10,
    AZF_VALUE_COLLECTION_SINT64 = 11,
    AZF_VALUE_MODEL_BINDING_DATA = 12,
    AZF_VALUE_COLLECTION_MODEL_BINDING_DATA = 13
};

/* The TypedData member name of a kind ("string", "collection_sint64", ...; "null" for 0,
 * "unknown" otherwise). Static, never NULL. */
AZF_API const char *azf_value_kind_name(int kind);

/* Non-zero if the host accepts this kind as an output or return value (string, json,
 * bytes, stream, http, int, double; null means "no value"). */
AZF_API int azf_value_kind_is_output(int kind);

/* ---- construction ------------------------------------------------------- */

/* Called when an adopted buffer is no longer needed, with the data pointer and the
 * user_data given to azf_value_adopt_data. */
typedef void (*azf_release_fn)(void *data, void *user_data);

AZF_API int azf_value_new_null(azf_value **out);
AZF_API int azf_value_new_int(azf_value **out, int64_t v);
AZF_API int azf_value_new_double(azf_value **out, double v);

/* A string, json, bytes or stream value holding a copy of `len` bytes of `data`
 * (copied; one allocation). The copy is always followed by a NUL byte. `data` may be
 * NULL when len is 0. */
AZF_API int azf_value_new_data(azf_value **out, int kind, const void *data, size_t len);

/* Shorthand for azf_value_new_data(out, AZF_VALUE_STRING, s, strlen(s)). */
AZF_API int azf_value_new_string(azf_value **out, const char *s);

/* A string, json, bytes or stream value that uses `data` without copying it.
 * `data` is borrowed until the value is freed; then release(data, user_data) is called
 * (if release is not NULL; a NULL release means the caller keeps the data alive until
 * the value is freed and frees it itself). If this function fails, release is not
 * called. For string and json, data[len] must be a NUL byte (checked: AZF_E_INVALID
 * otherwise), so every text value can be used as a C string. */
AZF_API int azf_value_adopt_data(azf_value **out, int kind, const void *data, size_t len,
                                 azf_release_fn release, void *user_data);

/* An empty collection of one of the AZF_VALUE_COLLECTION_* kinds. */
AZF_API int azf_value_new_collection(azf_value **out, int kind);

/* Appends `item` (owned on success) to a collection. The item's kind must match:
 * bytes (or stream) for collection_bytes, string for collection_string, double for
 * collection_double, int for collection_sint64, model_binding_data for its collection. */
AZF_API int azf_value_collection_append(azf_value *coll, azf_value *item);

/* Model binding data (SDK-type binding reference). Strings copied (NULL means "");
 * content copied. */
AZF_API int azf_value_new_model_binding_data(azf_value **out, const char *version,
                                             const char *source, const char *content_type,
                                             const void *content, size_t content_len);

/* An empty HTTP value (no method, url, status, body; empty maps). */
AZF_API int azf_value_new_http(azf_value **out);

/* A deep copy; adopted data is copied, so the copy owns everything. */
AZF_API int azf_value_copy(azf_value **out, const azf_value *v);

/* Frees the value and everything it owns (children, adopted data through release).
 * NULL is a no-op. */
AZF_API void azf_value_free(azf_value *v);

/* ---- reading ------------------------------------------------------------ */

/* The kind; a NULL pointer reads as AZF_VALUE_NULL. */
AZF_API int azf_value_kind(const azf_value *v);

/* The bytes of a string, json, bytes or stream value (borrowed: valid until the value
 * is freed); *len receives the length (len may be NULL). NULL for other kinds. Text
 * kinds are NUL-terminated. */
AZF_API const void *azf_value_data(const azf_value *v, size_t *len);

/* The number of an int or double value; 0 for other kinds. */
AZF_API int64_t azf_value_int(const azf_value *v);
AZF_API double azf_value_double(const azf_value *v);

/* Collections: the number of items (0 for other kinds) and item i (borrowed; NULL
 * when out of range). Items of collection_double are double values, of
 * collection_sint64 int values, and so on. */
AZF_API size_t azf_value_count(const azf_value *v);
AZF_API const azf_value *azf_value_item(const azf_value *v, size_t i);

/* Model binding data fields (borrowed; NULL for other kinds). */
AZF_API const char *azf_value_model_version(const azf_value *v);
AZF_API const char *azf_value_model_source(const azf_value *v);
AZF_API const char *azf_value_model_content_type(const azf_value *v);
AZF_API const void *azf_value_model_content(const azf_value *v, size_t *len);

/* ---- HTTP --------------------------------------------------------------------
 * One type serves requests and responses (RpcHttp). The three string maps hold
 * entries in insertion order; a value may be NULL (a null entry of the protocol's
 * nullable_* maps). Setting a name that exists replaces its value; header names
 * compare case-insensitively, query and route parameter names exactly. */

enum {
    AZF_HTTP_HEADERS = 0,
    AZF_HTTP_QUERY = 1, /* query string parameters (RpcHttp.query) */
    AZF_HTTP_PARAMS = 2 /* route parameters (RpcHttp.params) */
};

/* Scalar fields: strings copied; NULL clears. */
AZF_API int azf_value_http_set_method(azf_value *http, const char *method);
AZF_API int azf_value_http_set_url(azf_value *http, const char *url);
AZF_API int azf_value_http_set_status_code(azf_value *http, const char *status_code);
AZF_API int azf_value_http_set_content_negotiation(azf_value *http, int enable);
/* Replaces the body with `body` (owned on success; NULL removes the body). */
AZF_API int azf_value_http_set_body(azf_value *http, azf_value *body);
/* Sets a map entry (name and value copied; value NULL = a null value). */
AZF_API int azf_value_http_set(azf_value *http, int map, const char *name, const char *value);

/* Borrowed strings, NULL when unset. */
AZF_API const char *azf_value_http_method(const azf_value *http);
AZF_API const char *azf_value_http_url(const azf_value *http);
AZF_API const char *azf_value_http_status_code(const azf_value *http);
AZF_API int azf_value_http_content_negotiation(const azf_value *http);
AZF_API const azf_value *azf_value_http_body(const azf_value *http);

/* Map access. azf_value_http_get returns 1 and sets *value (possibly NULL for a null
 * entry) when the name is present, 0 when absent, AZF_E_INVALID on bad arguments.
 * azf_value_http_entry returns the name of entry i (NULL when out of range) and sets
 * *value (value may be NULL). All strings borrowed from the http value. */
AZF_API size_t azf_value_http_count(const azf_value *http, int map);
AZF_API int azf_value_http_get(const azf_value *http, int map, const char *name,
                               const char **value);
AZF_API const char *azf_value_http_entry(const azf_value *http, int map, size_t i,
                                         const char **value);

/* Cookies (response). azf_value_http_add_cookie takes ownership of the cookie on success. */
AZF_API int azf_value_http_add_cookie(azf_value *http, azf_cookie *cookie);
AZF_API size_t azf_value_http_cookie_count(const azf_value *http);
AZF_API const azf_cookie *azf_value_http_cookie(const azf_value *http, size_t i);

/* Claims identities (EasyAuth). azf_value_http_add_identity returns the index of the
 * new identity (>= 0) or an error; the three strings are copied, NULL = null. */
AZF_API int azf_value_http_add_identity(azf_value *http, const char *authentication_type,
                                        const char *name_claim_type, const char *role_claim_type);
AZF_API int azf_value_http_add_claim(azf_value *http, size_t identity, const char *type,
                                     const char *value);
AZF_API size_t azf_value_http_identity_count(const azf_value *http);
/* Sets the out-parameters (each may be NULL) to borrowed strings (NULL = null). */
AZF_API int azf_value_http_identity(const azf_value *http, size_t i,
                                    const char **authentication_type, const char **name_claim_type,
                                    const char **role_claim_type);
AZF_API size_t azf_value_http_claim_count(const azf_value *http, size_t identity);
AZF_API int azf_value_http_claim(const azf_value *http, size_t identity, size_t i,
                                 const char **type, const char **value);

/* ---- cookies (RpcHttpCookie) ----------------------------------------------------
 * Every optional field starts null. Strings are copied. */

enum {
    AZF_SAME_SITE_UNSET = 0, /* no SameSite attribute */
    AZF_SAME_SITE_LAX = 1,
    AZF_SAME_SITE_STRICT = 2,
    AZF_SAME_SITE_NONE = 3 /* literally "SameSite=None" */
};

AZF_API int azf_cookie_new(azf_cookie **out, const char *name, const char *value);
AZF_API void azf_cookie_free(azf_cookie *c);
AZF_API int azf_cookie_set_domain(azf_cookie *c, const char *domain); /* NULL: null */
AZF_API int azf_cookie_set_path(azf_cookie *c, const char *path);     /* NULL: null */
AZF_API int azf_cookie_set_expires(azf_cookie *c, int64_t seconds, int32_t nanos);
AZF_API int azf_cookie_set_secure(azf_cookie *c, int secure);
AZF_API int azf_cookie_set_http_only(azf_cookie *c, int http_only);
AZF_API int azf_cookie_set_same_site(azf_cookie *c, int same_site);
AZF_API int azf_cookie_set_max_age(azf_cookie *c, double seconds);

AZF_API const char *azf_cookie_name(const azf_cookie *c);
AZF_API const char *azf_cookie_value(const azf_cookie *c);
AZF_API const char *azf_cookie_domain(const azf_cookie *c); /* NULL when null */
AZF_API const char *azf_cookie_path(const azf_cookie *c);   /* NULL when null */
/* 1 and the timestamp when set, 0 when null. */
AZF_API int azf_cookie_expires(const azf_cookie *c, int64_t *seconds, int32_t *nanos);
/* -1 when null, else 0 or 1. */
AZF_API int azf_cookie_secure(const azf_cookie *c);
AZF_API int azf_cookie_http_only(const azf_cookie *c);
AZF_API int azf_cookie_same_site(const azf_cookie *c);
/* 1 and the seconds when set, 0 when null. */
AZF_API int azf_cookie_max_age(const azf_cookie *c, double *seconds);

/* ---- maps (trigger metadata, route values) ----------------------------------
 * A string -> value map in insertion order; keys compare exactly. */

AZF_API int azf_value_map_new(azf_value_map **out);
AZF_API void azf_value_map_free(azf_value_map *m);
/* Sets key (copied) to v (owned on success); an existing value is freed and replaced. */
AZF_API int azf_value_map_set(azf_value_map *m, const char *key, azf_value *v);
/* The value for key (borrowed), or NULL. */
AZF_API const azf_value *azf_value_map_get(const azf_value_map *m, const char *key);
AZF_API size_t azf_value_map_count(const azf_value_map *m);
/* Entry i: returns the value and sets *key (both borrowed); NULL when out of range. */
AZF_API const azf_value *azf_value_map_at(const azf_value_map *m, size_t i, const char **key);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_VALUE_H */
