/* Internal side of the marshal layer: the value structs and the conversions to and
 * from the protobuf-c FunctionRpc types. Only libazfunc layers include this. */
#ifndef AZF_MARSHAL_INTERNAL_H
#define AZF_MARSHAL_INTERNAL_H

#include "azfunc/value.h"
#include "common/common_internal.h"

#include "FunctionRpc.pb-c.h"

#include <stddef.h>

/* Short names for the generated protobuf-c types. */
#define AZF__PB(name) AzureFunctionsRpcMessages__##name
typedef AZF__PB(TypedData) azf__pb_typed_data;
typedef AZF__PB(ParameterBinding) azf__pb_binding;
typedef AZF__PB(RpcHttp) azf__pb_http;

typedef struct azf__kv {
    char *name;
    char *value; /* NULL: a null value */
} azf__kv;

typedef struct azf__kvlist {
    azf__kv *v;
    size_t n, cap;
} azf__kvlist;

typedef struct azf__identity {
    char *auth_type, *name_claim_type, *role_claim_type;
    azf__kvlist claims; /* name = claim type, value = claim value */
} azf__identity;

typedef struct azf__http {
    char *method, *url, *status_code;
    azf__kvlist maps[3]; /* AZF_HTTP_HEADERS, _QUERY, _PARAMS */
    azf_value *body;
    int content_negotiation;
    azf_cookie **cookies;
    size_t n_cookies, cap_cookies;
    azf__identity *ids;
    size_t n_ids, cap_ids;
} azf__http;

struct azf_cookie {
    char *name, *value;
    char *domain, *path; /* NULL: null */
    int has_expires;
    int64_t expires_s;
    int32_t expires_ns;
    int secure, http_only; /* -1: null */
    int same_site;
    int has_max_age;
    double max_age;
};

struct azf_value {
    int kind;
    union {
        int64_t i;
        double d;
        struct {
            const void *ptr;
            size_t len;
            azf_release_fn release;
            void *release_ud;
            void *release_ptr; /* the pointer given to azf_value_adopt_data */
        } data;
        struct {
            azf_value **items;
            size_t n, cap;
        } coll;
        struct {
            char *version, *source, *content_type;
            const void *content;
            size_t content_len;
        } model;
        azf__http *http;
    } u;
    /* Copied bytes, model-binding strings and the http struct live here, so most
     * values take one allocation. */
    _Alignas(16) char inline_data[];
};

struct azf_value_map {
    struct {
        char *key;
        azf_value *value;
    } * e;
    size_t n, cap;
};

/* Grows *arr (elements of `elem` bytes) to hold at least `need`; 0 or AZF_E_NOMEM. */
int azf__grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Appends an http map entry without checking for an existing name. */
int azf__http_append(azf_value *http, int map, const char *name, const char *value);

/* ---- protobuf-c conversion -------------------------------------------------------
 *
 * Decoding (TypedData -> azf_value) accepts every TypedData member.
 * With AZF__MARSHAL_BORROW, string/json/bytes/stream payloads (top level, http body and
 * collection items) point into the decoded message instead of being copied: the
 * values are then valid only while the message is alive (free the values before
 * protobuf_c_message_free_unpacked). HTTP fields, maps and model binding data are
 * always copied (they are small).
 *
 * Encoding (azf_value -> TypedData) fills a caller-provided, initialised TypedData.
 * Payload strings and bytes are *borrowed* from the value (no copy): the TypedData may
 * be packed while the value is alive and unchanged. Sub-messages and arrays are
 * allocated with azf__malloc and released with azf__pb_typed_data_clear (never with
 * protobuf_c_message_free_unpacked). With AZF__MARSHAL_OUTPUT, kinds the host refuses
 * as outputs (collections, model binding data) give AZF_E_UNSUPPORTED.
 * With AZF__MARSHAL_NULLABLE, http maps go to the nullable_* fields (the request
 * shape of a host with UseNullableValueDictionaryForHttp); otherwise to the plain
 * maps, where a null value is sent as "". */
enum { AZF__MARSHAL_BORROW = 1, AZF__MARSHAL_OUTPUT = 2, AZF__MARSHAL_NULLABLE = 4 };

/* Decodes; td NULL or with no member set gives a null value. Errors: AZF_E_NOMEM,
 * AZF_E_PARSE (unknown member; message in err). */
int azf__value_from_pb(azf_value **out, const azf__pb_typed_data *td, int flags, azf__errmsg *err);

/* Encodes into *td (initialised by the caller with ..._TYPED_DATA__INIT). On failure
 * *td is cleared and left empty. Errors: AZF_E_NOMEM, AZF_E_UNSUPPORTED, AZF_E_INVALID. */
int azf__value_to_pb(const azf_value *v, azf__pb_typed_data *td, int flags, azf__errmsg *err);

/* Frees what azf__value_to_pb allocated inside *td and resets it to an empty TypedData. */
void azf__pb_typed_data_clear(azf__pb_typed_data *td);

/* A ParameterBinding's value. Shared-memory bindings give AZF_E_UNSUPPORTED (the worker
 * resolves them into TypedData first). */
int azf__value_from_pb_binding(azf_value **out, const azf__pb_binding *pb, int flags,
                               azf__errmsg *err);

/* Trigger metadata: a map from the InvocationRequest entries. */
int azf__value_map_from_pb(azf_value_map **out, size_t n,
                           AZF__PB(InvocationRequest__TriggerMetadataEntry) *const *entries,
                           int flags, azf__errmsg *err);

/* A freshly allocated TypedData (azf__malloc) filled by azf__value_to_pb; free it
 * with azf__pb_typed_data_free. */
int azf__value_to_pb_new(const azf_value *v, azf__pb_typed_data **out, int flags, azf__errmsg *err);
void azf__pb_typed_data_free(azf__pb_typed_data *td);

#endif
