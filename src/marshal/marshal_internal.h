/* Internal side of the marshal layer: the value structs. Only libazfunc layers include
 * this; it knows nothing of protobuf (the conversions are in marshal/marshal_pb.h). */
#ifndef AZF_MARSHAL_INTERNAL_H
#define AZF_MARSHAL_INTERNAL_H

#include "azfunc/value.h"
#include "common/common_internal.h"

#include <stddef.h>

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

/* Entries in insertion order (e[0..n)); past a few entries, a hash index of them
 * (open addressing, linear probing; a slot holds entry index + 1, 0 when empty) keeps
 * set and get O(1) on average. Only value.c changes a map (azf__value_map_clear empties
 * one), so the index always matches e. */
struct azf_value_map {
    struct {
        char *key;
        azf_value *value;
    } * e;
    size_t n, cap;
    size_t *slots, nslots; /* NULL, or a power of two larger than 2 * n */
};

/* Frees every entry; the map stays usable. */
void azf__value_map_clear(azf_value_map *m);

/* Grows *arr (elements of `elem` bytes) to hold at least `need`; 0 or AZF_E_NOMEM. */
int azf__grow(void **arr, size_t *cap, size_t need, size_t elem);

/* Appends an http map entry without checking for an existing name. */
int azf__http_append(azf_value *http, int map, const char *name, const char *value);

#endif
