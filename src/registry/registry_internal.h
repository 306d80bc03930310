/* Internal side of the registry layer: function structs, route templates and the
 * conversions to protobuf-c messages used by the worker. */
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

/* function.json -> metadata object. On failure err holds "<file>: <message>". */
int azf__function_json_load(const char *app_root, const char *folder, cJSON **meta,
                            azf__errmsg *err);
/* The same from function.json text already in memory (used by the fuzzer): file is
 * the path used in messages; script resolution is skipped when app_root is NULL. */
int azf__function_json_parse(const char *text, size_t len, const char *file, const char *name,
                             cJSON **meta, azf__errmsg *err);

/* ---- protobuf-c conversions for the worker ------------------------------------------ */

typedef AZF__PB(RpcFunctionMetadata) azf__pb_function_metadata;

/* Fills *md (initialised by the caller) for a FunctionMetadataResponse. Strings are
 * borrowed from the function; sub-messages are allocated and released with
 * azf__function_metadata_clear. Errors: AZF_E_NOMEM. */
int azf__function_to_pb(const azf_function *fn, azf__pb_function_metadata *md);
void azf__function_metadata_clear(azf__pb_function_metadata *md);

/* The v1 FunctionLoadRequest path: reads <metadata.directory>/function.json (the host
 * sends the absolute function folder; its parent is the app root), takes the request's
 * function_id and properties, and adds the function. A broken function.json still adds
 * a function carrying the error (so invocations fail with it), as azf_registry_load_v1
 * does; an existing function of that name is given the id instead (azf_registry_bind_id).
 * Returns 0 or the azf_registry_add errors; *fn (may be NULL) receives the function. */
int azf__registry_add_load_request(azf_registry *reg, const AZF__PB(FunctionLoadRequest) * req,
                                   const azf_handler *h, void *user_data, const azf_function **fn);

/* An invocation from an InvocationRequest: inputs by binding name (as the host names
 * them), trigger metadata, trace and retry context. flags as for azf__value_from_pb;
 * with AZF__MARSHAL_BORROW the request must outlive the invocation. */
int azf__invocation_from_pb(azf_invocation **out, const azf_function *fn,
                            const AZF__PB(InvocationRequest) * req, int flags, azf__errmsg *err);

/* Fills *resp (initialised by the caller) from a completed invocation: output_data
 * (null outputs left out), return_value (unset when null), and result (Success, Failure
 * with the exception, or Cancelled). Payloads are borrowed from the invocation, which
 * must stay alive until the response is packed. An output the host cannot take turns
 * the response into a Failure naming the binding. AZF_E_STATE when not completed,
 * AZF_E_NOMEM. Release with azf__invocation_response_clear. */
int azf__invocation_to_pb(const azf_invocation *inv, AZF__PB(InvocationResponse) * resp);
void azf__invocation_response_clear(AZF__PB(InvocationResponse) * resp);

/* Parses a JSON object (a UTF-8 BOM is skipped; trailing text is an error) into *root
 * (free with cJSON_Delete). Errors (AZF_E_PARSE): "<file>:<line>:<col>: invalid JSON",
 * "<file>: the top level must be a JSON object." Used by the host layer's settings too. */
int azf__json_parse_root(const char *text, size_t len, const char *file, cJSON **root,
                         azf__errmsg *err);

#endif
