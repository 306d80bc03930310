/* Internal side of the registry layer: function structs and route templates. It knows
 * nothing of protobuf: the worker converts FunctionRpc messages to and from these. */
#ifndef AZF_REGISTRY_INTERNAL_H
#define AZF_REGISTRY_INTERNAL_H

#include "azfunc/registry.h"
#include "marshal/marshal_internal.h"

#include <cjson/cJSON.h>
#include <pthread.h>

/* ---- route templates ---------------------------------------------------------- */

typedef struct azf__route azf__route;

/* Parses a route template. Errors: AZF_E_PARSE with
 * "The route template '<t>' is invalid: <reason>." in err; AZF_E_NOMEM. */
int azf__route_parse(azf__route **out, const char *tmpl, azf__errmsg *err);
void azf__route_free(azf__route *r);
/* 1 on a match (with *values, if not NULL, set to a new map of string values), 0 when
 * the path does not match, AZF_E_NOMEM. */
int azf__route_match(const azf__route *r, const char *path, azf_value_map **values);
/* < 0 when a is more specific than b, > 0 when less, 0 when equal. */
int azf__route_compare(const azf__route *a, const azf__route *b);

/* ---- functions ------------------------------------------------------------------ */

struct azf_binding {
    char *name, *type, *json;
    int direction, data_type, is_trigger;
};

struct azf_handler {
    azf_invoke_fn invoke;
    azf_invoke_fn run; /* optional: azf_invocation_run, on the caller's thread */
    azf_cancel_fn cancel;
    azf_release_user_data_fn release;
};

struct azf_function {
    char *name, *id, *directory, *script_file, *entry_point, *language, *load_error;
    int disabled;
    azf_binding *bindings;
    size_t n_bindings;
    const azf_binding *trigger;
    char *route_template; /* httpTrigger only */
    azf__route *route;
    char **methods;
    size_t n_methods;
    int auth_level;
    int retry_strategy;
    int32_t max_retry_count;
    int64_t delay_ms, minimum_ms, maximum_ms;
    azf__kv *props;
    size_t n_props;
    azf_handler handler;
    void *user_data;
};

struct azf_registry {
    pthread_rwlock_t lock;
    azf_function **fns;
    size_t n, cap;
    azf__errmsg err;
};

/* Builds a function from a metadata object (the JSON contract of registry.h). The
 * function is not added anywhere. Errors: AZF_E_PARSE (message in err), AZF_E_NOMEM. */
int azf__function_build(const cJSON *meta, azf_function **out, azf__errmsg *err);
void azf__function_free(azf_function *fn);
/* A function that only carries a load error (see azf_registry_load_v1). */
int azf__function_failed(const char *name, const char *directory, const char *error,
                         azf_function **out);
/* Adds a built function (owned on success). AZF_E_EXISTS on a name or id clash. */
int azf__registry_insert(azf_registry *reg, azf_function *fn, const azf_handler *h,
                         void *user_data);
/* Removes (and frees) every function keep() refuses: a host's function filter. */
void azf__registry_retain(azf_registry *reg, int (*keep)(const azf_function *fn));

/* function.json -> metadata object. On failure err holds "<file>: <message>". */
int azf__function_json_load(const char *app_root, const char *folder, cJSON **meta,
                            azf__errmsg *err);
/* The same from function.json text already in memory (used by the fuzzer): file is
 * the path used in messages; script resolution is skipped when app_root is NULL. */
int azf__function_json_parse(const char *text, size_t len, const char *file, const char *name,
                             cJSON **meta, azf__errmsg *err);

/* The v1 load path: reads <directory>/function.json (the host sends the absolute function
 * folder; its parent is the app root), takes the host's function_id, name (when not
 * empty: it wins over the folder's) and properties, and adds the function. A broken
 * function.json still adds a function carrying the error (so invocations fail with it),
 * as azf_registry_load_v1 does; an existing function of that name is given the id
 * instead (azf_registry_bind_id). Returns 0, AZF_E_INVALID (no id, or a directory with no
 * parent) or the azf_registry_add errors; *out (may be NULL) receives the function. */
int azf__registry_add_folder(azf_registry *reg, const char *function_id, const char *name,
                             const char *directory, const azf__kv *props, size_t n_props,
                             const azf_handler *h, void *user_data, const azf_function **out);

/* An input under the name the host gave it, whether or not the function declares a
 * binding of that name (the host's request is authoritative). v owned on success.
 * Errors as azf_invocation_set_input's, without AZF_E_NOTFOUND. */
int azf__invocation_put_input(azf_invocation *inv, const char *name, azf_value *v);

/* The starter's log callback with each record's length (the worker's: a message may hold
 * NUL, which the host receives whole). Replaces one set by azf_invocation_set_on_log. */
typedef void (*azf__invocation_log_len_fn)(azf_invocation *inv, int level, const char *category,
                                           const char *message, size_t message_len,
                                           void *user_data);
int azf__invocation_set_on_log_len(azf_invocation *inv, azf__invocation_log_len_fn fn,
                                   void *user_data);
/* The failure message and stack with their lengths (either may hold NUL; both are
 * NUL-terminated too). Borrowed, as azf_invocation_error_message. */
const char *azf__invocation_error_text(const azf_invocation *inv, size_t *message_len,
                                       const char **stack, size_t *stack_len);

/* Parses a JSON object (a UTF-8 BOM is skipped; trailing text is an error) into *root
 * (free with cJSON_Delete). Errors (AZF_E_PARSE): "<file>:<line>:<col>: invalid JSON",
 * "<file>: the top level must be a JSON object." Used by the host layer's settings too. */
int azf__json_parse_root(const char *text, size_t len, const char *file, cJSON **root,
                         azf__errmsg *err);

#endif
