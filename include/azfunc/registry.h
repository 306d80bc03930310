/* libazfunc — registry layer: functions, bindings, HTTP routes, and the handler
 * interface through which the worker, the local runner and custom hosts run them.
 *
 * Thread safety:
 * - azf_registry: every function may be called from any thread at any time (an
 *   internal lock guards it). A function pointer obtained from a registry stays valid,
 *   and its fields stay unchanged (except that azf_registry_bind_id may set a missing id
 *   once), until the registry is freed. azf_registry_errmsg describes the last failed
 *   call on the registry, whichever thread made it.
 * - azf_function, azf_binding: read-only, usable from any thread.
 * - azf_handler: one thread at a time; copied by azf_registry_add.
 * - azf_invocation: see "Invocations" below.
 *
 * ---- The metadata JSON (azf_registry_add) --------------------------------------
 * One JSON object per function, in function.json syntax plus identity fields. This is
 * the contract between the registry and whoever indexes functions (the Python adapter,
 * the function.json loader, a native worker):
 *
 *   {
 *     "name":        "HttpTrigger",   required; ^[A-Za-z][A-Za-z0-9_-]{0,127}$, not "host";
 *                                     unique in the registry (case-insensitive)
 *     "functionId":  "6f1c...",       optional; unique when given. Never generated: for
 *                                     v1 the host supplies it later (azf_registry_bind_id)
 *     "directory":   "/app/Fn",       optional
 *     "scriptFile":  "/app/Fn/__init__.py", optional
 *     "entryPoint":  "main",          optional ("" when absent)
 *     "language":    "python",        optional (default "python")
 *     "disabled":    false,           optional: true or "true" disables the function
 *     "bindings":    [ {binding}, ... ],
 *     "rawBindings": [ "<JSON text of binding 0>", ... ],   optional
 *     "retry":       { "strategy": "fixed_delay" | "exponential_backoff"
 *                                  (also "fixedDelay", "exponentialBackoff"; any case),
 *                      "maxRetryCount": 3 or "3",
 *                      "delayInterval": "00:00:05",        (fixed_delay: required)
 *                      "minimumInterval": "00:00:01",      (exponential: required)
 *                      "maximumInterval": "00:15:00" },    (exponential: required)
 *                    optional; intervals are TimeSpans "[d.]hh:mm:ss[.fffffff]"
 *     "properties":  { "worker_indexed": "True", ... }     optional, string values only
 *   }
 *
 * A binding object: {"name", "type", "direction", "dataType", ...any other keys}.
 * "name" matches ^([A-Za-z][A-Za-z0-9]{0,127}|\$return)$; "type" is required;
 * "direction" is "in" (default), "out" or "inout"; "dataType" is "string", "binary",
 * "stream" or "undefined" (default). Enum strings are case-insensitive ("IN", "in").
 * An httpTrigger binding may have "route" (default: the function name), "methods"
 * (array of method names, any case; absent or null: every method) and "authLevel"
 * ("anonymous", "user", "function" (default), "system", "admin"; any case).
 * Unknown keys are kept: the binding's JSON text is available verbatim.
 * "rawBindings", when present, must have one string per binding and is kept verbatim
 * (for RpcFunctionMetadata.raw_bindings); when "bindings" is absent the bindings are
 * parsed from "rawBindings". Without "rawBindings" each binding object is serialised.
 *
 * Validation (error texts are the host's where it has one):
 *   "No trigger binding specified. A function must have a trigger input binding."
 *   "Multiple trigger bindings found ('a', 'b'). A function must have exactly one trigger binding."
 *   "The binding name <n> is invalid. Please assign a valid name to the binding."
 *   "$return bindings must specify a direction of 'out'."
 *   "Multiple bindings with name '<n>' discovered. Binding names must be unique."
 *   "The binding '<n>' has an invalid direction '<d>'. Expected 'in', 'out' or 'inout'."
 *   "The route template '<t>' is invalid: <reason>."
 * A trigger is an in/inout binding whose type ends with "Trigger" (any case).
 */
#ifndef AZFUNC_REGISTRY_H
#define AZFUNC_REGISTRY_H

#include "azfunc/common.h"
#include "azfunc/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct azf_registry azf_registry;
typedef struct azf_function azf_function;
typedef struct azf_binding azf_binding;
typedef struct azf_handler azf_handler;
typedef struct azf_invocation azf_invocation;

enum { AZF_DIRECTION_IN = 0, AZF_DIRECTION_OUT = 1, AZF_DIRECTION_INOUT = 2 };

enum {
    AZF_DATA_TYPE_UNDEFINED = 0,
    AZF_DATA_TYPE_STRING = 1,
    AZF_DATA_TYPE_BINARY = 2,
    AZF_DATA_TYPE_STREAM = 3
};

enum {
    AZF_AUTH_ANONYMOUS = 0,
    AZF_AUTH_USER = 1,
    AZF_AUTH_FUNCTION = 2,
    AZF_AUTH_SYSTEM = 3,
    AZF_AUTH_ADMIN = 4
};

enum { AZF_RETRY_NONE = -1, AZF_RETRY_EXPONENTIAL_BACKOFF = 0, AZF_RETRY_FIXED_DELAY = 1 };

/* ---- handlers -------------------------------------------------------------------
 * A handler runs invocations of the functions it is attached to.
 *
 * invoke: called by azf_invocation_start on the starter's thread. It must not block for
 *   long: it hands the invocation to its own machinery and returns 0; the invocation is
 *   then completed later, from any thread, exactly once (azf_invocation_complete,
 *   azf_invocation_fail or azf_invocation_complete_cancelled; it may also complete
 *   before returning). A non-zero return means the handler did not take the invocation:
 *   if it is not complete yet, the library fails it ("the handler refused the
 *   invocation: <azf_strerror>").
 * run: optional; called instead of invoke by azf_invocation_run, on the caller's thread,
 *   which waits for the completion anyway: the handler may run the function right there
 *   and complete the invocation before returning (the Python handler does, for sync
 *   functions). It returns as invoke does.
 * cancel: optional; called by azf_invocation_cancel while the invocation runs, on the
 *   canceller's thread. It asks the handler to finish early; the handler still completes
 *   the invocation (usually with azf_invocation_complete_cancelled).
 * Callbacks receive the user_data given to azf_registry_add for that function. They run
 * without any library lock held, so they may call any azf_ function, but they must not
 * free the invocation (the starter owns it) nor start it again. */
typedef int (*azf_invoke_fn)(azf_invocation *inv, void *user_data);
typedef void (*azf_cancel_fn)(azf_invocation *inv, void *user_data);
/* Called when the registry is freed, once per successful azf_registry_add (or
 * azf_registry_load_v1 that added functions), with that call's user_data. */
typedef void (*azf_release_user_data_fn)(void *user_data);

AZF_API int azf_handler_new(azf_handler **out);
AZF_API void azf_handler_free(azf_handler *h);
AZF_API int azf_handler_set_invoke(azf_handler *h, azf_invoke_fn fn);
AZF_API int azf_handler_set_cancel(azf_handler *h, azf_cancel_fn fn);
AZF_API int azf_handler_set_run(azf_handler *h, azf_invoke_fn fn);
AZF_API int azf_handler_set_release(azf_handler *h, azf_release_user_data_fn fn);

/* ---- registry ---------------------------------------------------------------------- */

AZF_API int azf_registry_new(azf_registry **out);
/* Frees the registry, its functions, and calls each handler's release callback.
 * No invocation of its functions may be running. NULL is a no-op. */
AZF_API void azf_registry_free(azf_registry *reg);
/* The message of the last failed call (never NULL; "" when none). */
AZF_API const char *azf_registry_errmsg(const azf_registry *reg);

/* Adds a function described by metadata_json (copied; see the top of this file).
 * handler: copied, may be NULL (invocations then fail with "no handler"); user_data:
 * passed to the handler's callbacks for this function (borrowed until the registry is
 * freed, then given to the handler's release callback). On failure the release
 * callback is not called.
 * Returns 0, AZF_E_PARSE (invalid JSON or metadata; azf_registry_errmsg says why),
 * AZF_E_EXISTS (name or id taken), AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_registry_add(azf_registry *reg, const char *metadata_json,
                             const azf_handler *handler, void *user_data);

/* Loads a v1 app: every folder of app_root holding a function.json, in name order
 * (see azf_function_json_read). A folder whose function.json is broken still gives a
 * function (named after the folder) that carries the error (azf_function_load_error)
 * and fails every invocation, as the host does. handler and user_data as for
 * azf_registry_add, shared by every function; the release callback runs once for the
 * whole load (when the registry is freed), not once per function.
 * Returns the number of functions added (>= 0), or AZF_E_IO (app_root unreadable),
 * AZF_E_EXISTS (a name is taken), AZF_E_NOMEM, AZF_E_INVALID. */
AZF_API int azf_registry_load_v1(azf_registry *reg, const char *app_root,
                                 const azf_handler *handler, void *user_data);

/* Sets the id of a function that has none (v1: the host's id from FunctionLoadRequest).
 * Returns 0, AZF_E_NOTFOUND (no such name), AZF_E_EXISTS (id used by another function),
 * AZF_E_STATE (the function already has a different id), AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_registry_bind_id(azf_registry *reg, const char *name, const char *function_id);

/* Lookups (results borrowed until the registry is freed; NULL when absent).
 * Names compare case-insensitively, ids exactly. */
AZF_API size_t azf_registry_count(const azf_registry *reg);
AZF_API const azf_function *azf_registry_at(const azf_registry *reg, size_t i);
AZF_API const azf_function *azf_registry_find(const azf_registry *reg, const char *name);
AZF_API const azf_function *azf_registry_find_id(const azf_registry *reg, const char *function_id);

/* Finds the HTTP-triggered function for a request. path is the URL path after the route
 * prefix (for "/api/products/5?x=1" pass "products/5"; a leading '/' and the query
 * are ignored; percent-escapes are decoded in values, not in literals). Disabled
 * functions and functions with load errors are skipped. When several routes match,
 * the most specific wins (literal segments before constrained parameters, before
 * plain parameters, before catch-alls), then the first added.
 * On success *fn is set and, if route_values is not NULL, *route_values receives a new
 * map (owned by the caller) of string values by parameter name (optional parameters
 * without a value and without a default are absent).
 * Returns 0, AZF_E_NOTFOUND (no route matches: HTTP 404), AZF_E_UNSUPPORTED (a route
 * matches but none of its functions accepts the method: HTTP 405), AZF_E_INVALID,
 * AZF_E_NOMEM. */
AZF_API int azf_registry_match_route(const azf_registry *reg, const char *method, const char *path,
                                     const azf_function **fn, azf_value_map **route_values);

/* ---- functions and bindings (read-only; strings borrowed from the registry) --- */

AZF_API const char *azf_function_name(const azf_function *fn);
AZF_API const char *azf_function_id(const azf_function *fn);          /* "" when unbound */
AZF_API const char *azf_function_directory(const azf_function *fn);   /* "" when unset */
AZF_API const char *azf_function_script_file(const azf_function *fn); /* "" when unset */
AZF_API const char *azf_function_entry_point(const azf_function *fn); /* "" when unset */
AZF_API const char *azf_function_language(const azf_function *fn);
AZF_API int azf_function_is_disabled(const azf_function *fn);
/* The error that prevented loading (see azf_registry_load_v1), or NULL. */
AZF_API const char *azf_function_load_error(const azf_function *fn);
AZF_API void *azf_function_user_data(const azf_function *fn);

AZF_API size_t azf_function_binding_count(const azf_function *fn);
AZF_API const azf_binding *azf_function_binding(const azf_function *fn, size_t i);
/* By name (case-insensitive, like the host), or NULL. */
AZF_API const azf_binding *azf_function_find_binding(const azf_function *fn, const char *name);
AZF_API const azf_binding *azf_function_trigger(const azf_function *fn);

/* HTTP trigger facts: the route template (NULL when the trigger is not httpTrigger),
 * the accepted methods (upper case; count 0 = every method) and the auth level. */
AZF_API const char *azf_function_route(const azf_function *fn);
AZF_API size_t azf_function_method_count(const azf_function *fn);
AZF_API const char *azf_function_method(const azf_function *fn, size_t i);
AZF_API int azf_function_auth_level(const azf_function *fn);

/* Retry policy: the strategy (AZF_RETRY_NONE when there is none); the other outputs
 * (each may be NULL) get the max retry count (-1: forever) and intervals in ms. */
AZF_API int azf_function_retry(const azf_function *fn, int32_t *max_retry_count, int64_t *delay_ms,
                               int64_t *minimum_ms, int64_t *maximum_ms);

/* Worker-defined properties ("properties" of the metadata JSON). */
AZF_API size_t azf_function_property_count(const azf_function *fn);
AZF_API const char *azf_function_property_at(const azf_function *fn, size_t i, const char **value);
AZF_API const char *azf_function_property(const azf_function *fn, const char *key);

AZF_API const char *azf_binding_name(const azf_binding *b);
AZF_API const char *azf_binding_type(const azf_binding *b);
AZF_API int azf_binding_direction(const azf_binding *b);
AZF_API int azf_binding_data_type(const azf_binding *b);
AZF_API int azf_binding_is_trigger(const azf_binding *b);
/* The binding's JSON text: verbatim from "rawBindings", else serialised. */
AZF_API const char *azf_binding_json(const azf_binding *b);

/* ---- function.json --------------------------------------------------------------
 * Reads <app_root>/<folder>/function.json and produces the metadata JSON for
 * azf_registry_add: name = folder, directory = absolute function folder, scriptFile =
 * absolute script path, entryPoint, bindings, retry, disabled, properties. The script
 * is "scriptFile" (relative to the function folder; it must exist and stay inside the
 * app root), else the only file of the folder besides function.json, else
 * __init__.py. The metadata is validated as azf_registry_add does.
 * metadata_json receives the JSON text; error (may be NULL) receives the message on
 * failure: "<path>/function.json: <message>", for invalid JSON
 * "<path>/function.json:<line>:<column>: invalid JSON".
 * Returns 0, AZF_E_IO (unreadable), AZF_E_PARSE (invalid JSON or metadata),
 * AZF_E_NOTFOUND (scriptFile missing), AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_function_json_read(const char *app_root, const char *folder, azf_buf *metadata_json,
                                   azf_buf *error);

/* ---- invocations -------------------------------------------------------------------
 * Life cycle: the starter (worker, local runner, custom host) creates an invocation for
 * a function, sets inputs and context, sets a completion callback, and starts it. The
 * function's handler receives it, reads inputs, sets outputs and/or a return value, and
 * completes it exactly once, from any thread. The completion callback then runs on the
 * completing thread; after it the result accessors are stable.
 * Memory: the invocation is reference counted. The starter owns one reference (released
 * by azf_invocation_free, allowed at any time, also inside the completion callback);
 * a started invocation holds another until it completes. So the handler may use the
 * invocation until its completing call returns, and never after.
 * Threads: setters before start, by the starter only. Between start and completion the
 * handler owns inputs/outputs; accessors for inputs and context may be used by any
 * thread. azf_invocation_cancel may be called from any thread at any time.
 * Completion calls after the first return AZF_E_STATE and change nothing. */

enum {
    AZF_INVOCATION_NEW = 0,
    AZF_INVOCATION_RUNNING = 1,
    AZF_INVOCATION_SUCCEEDED = 2,
    AZF_INVOCATION_FAILED = 3,
    AZF_INVOCATION_CANCELLED = 4
};

/* Called once when the invocation completes, on the completing thread. */
typedef void (*azf_complete_fn)(azf_invocation *inv, void *user_data);

/* fn: borrowed (its registry must outlive the invocation); invocation_id copied. */
AZF_API int azf_invocation_new(azf_invocation **out, const azf_function *fn,
                               const char *invocation_id);
/* Releases the starter's reference. NULL is a no-op. */
AZF_API void azf_invocation_free(azf_invocation *inv);

/* Starter-side setters (AZF_E_STATE once started). Values and maps are owned on
 * success. An input name must be an in or inout binding (AZF_E_NOTFOUND otherwise). */
AZF_API int azf_invocation_set_input(azf_invocation *inv, const char *name, azf_value *v);
AZF_API int azf_invocation_set_trigger_metadata(azf_invocation *inv, azf_value_map *m);
/* W3C trace context (copied; NULL = ""), attributes: a map of string values (owned). */
AZF_API int azf_invocation_set_trace_context(azf_invocation *inv, const char *trace_parent,
                                             const char *trace_state, azf_value_map *attributes);
AZF_API int azf_invocation_set_retry_context(azf_invocation *inv, int32_t retry_count,
                                             int32_t max_retry_count, const char *exception_message,
                                             const char *exception_stack_trace);
AZF_API int azf_invocation_set_on_complete(azf_invocation *inv, azf_complete_fn fn,
                                           void *user_data);

/* The user's log records of a running invocation, delivered to the starter (the worker
 * turns them into RpcLog with log_category User). level is AZF_LOG_*; category is the
 * logger name; both strings are borrowed for the call. Runs on the logging thread; it
 * must not call azf_invocation_log or a completion function of the same invocation
 * (the accessors are fine). Every record it receives precedes the completion callback. */
typedef void (*azf_invocation_log_fn)(azf_invocation *inv, int level, const char *category,
                                      const char *message, void *user_data);
AZF_API int azf_invocation_set_on_log(azf_invocation *inv, azf_invocation_log_fn fn,
                                      void *user_data);

/* Handler side, any thread, while the invocation runs: passes one log record to the
 * starter's log callback (strings copied or consumed before it returns). Returns 0,
 * AZF_E_STATE once the invocation has completed (the record is dropped, as the host
 * drops logs that arrive after the response), AZF_E_INVALID. */
AZF_API int azf_invocation_log(azf_invocation *inv, int level, const char *category,
                               const char *message);
/* As azf_invocation_log, with the message given as message[0..message_len) (copied or
 * consumed before it returns): it may hold NUL characters, as a Python str may. The
 * worker sends such a record to the host whole; a log callback set with
 * azf_invocation_set_on_log receives it NUL-terminated, so its text ends at the first NUL. */
AZF_API int azf_invocation_log_len(azf_invocation *inv, int level, const char *category,
                                   const char *message, size_t message_len);

/* Hands the invocation to the function's handler (see azf_handler). A function
 * without a handler, disabled, or with a load error is failed at once (the completion
 * callback runs before this returns). Returns 0, AZF_E_STATE (already started),
 * AZF_E_INVALID. */
AZF_API int azf_invocation_start(azf_invocation *inv);

/* Starts the invocation as azf_invocation_start does and returns once it is complete
 * (its completion callback, if any, has returned). The handler's run callback, if it
 * has one, may run the function on the calling thread: the cheapest way to invoke
 * in-process. Never call it from a thread the handler needs in order to complete (a
 * starter callback, a Python function). Returns 0 (the outcome is
 * azf_invocation_status), AZF_E_STATE (already started), AZF_E_INVALID. */
AZF_API int azf_invocation_run(azf_invocation *inv);

/* Asks a running invocation to stop: marks it and calls the handler's cancel callback
 * (once). Returns 0, or AZF_E_STATE when it is not running. */
AZF_API int azf_invocation_cancel(azf_invocation *inv);
AZF_API int azf_invocation_cancel_requested(const azf_invocation *inv);

/* Context facts (borrowed; stable while the invocation lives). */
AZF_API const azf_function *azf_invocation_function(const azf_invocation *inv);
AZF_API const char *azf_invocation_id(const azf_invocation *inv);
AZF_API const azf_value *azf_invocation_input(const azf_invocation *inv, const char *name);
AZF_API const azf_value_map *azf_invocation_inputs(const azf_invocation *inv);
AZF_API const azf_value_map *azf_invocation_trigger_metadata(const azf_invocation *inv);
AZF_API const char *azf_invocation_trace_parent(const azf_invocation *inv);
AZF_API const char *azf_invocation_trace_state(const azf_invocation *inv);
AZF_API const azf_value_map *azf_invocation_trace_attributes(const azf_invocation *inv);
/* 1 and the fields (each out-pointer may be NULL) when a retry context was set, else 0. */
AZF_API int azf_invocation_retry_context(const azf_invocation *inv, int32_t *retry_count,
                                         int32_t *max_retry_count, const char **exception_message,
                                         const char **exception_stack_trace);

/* Handler side, while running. set_output: an out/inout binding other than $return
 * (AZF_E_NOTFOUND otherwise); the value's kind must be one the host accepts as an
 * output (AZF_E_UNSUPPORTED otherwise). set_return: the $return or implicit output.
 * Values owned on success; setting a name twice replaces the value. */
AZF_API int azf_invocation_set_output(azf_invocation *inv, const char *name, azf_value *v);
AZF_API int azf_invocation_set_return(azf_invocation *inv, azf_value *v);

/* Completion, exactly once (AZF_E_STATE afterwards or before start).
 * fail: message "<ExceptionType>: <message>" and the stack trace text (both copied;
 * NULL = ""); outputs set before failing are discarded. */
AZF_API int azf_invocation_complete(azf_invocation *inv);
AZF_API int azf_invocation_fail(azf_invocation *inv, const char *message, const char *stack_trace);
/* As azf_invocation_fail, with lengths: message and stack trace may hold NUL characters,
 * which the worker sends to the host whole (azf_invocation_error_message and _stack
 * return them NUL-terminated, so their text ends at the first NUL). */
AZF_API int azf_invocation_fail_len(azf_invocation *inv, const char *message, size_t message_len,
                                    const char *stack_trace, size_t stack_trace_len);
AZF_API int azf_invocation_complete_cancelled(azf_invocation *inv);

/* Results: the state (AZF_INVOCATION_*); outputs by binding name and the return value
 * (NULL when none), the failure message and stack ("" unless failed). Borrowed. */
AZF_API int azf_invocation_status(const azf_invocation *inv);
AZF_API const azf_value_map *azf_invocation_outputs(const azf_invocation *inv);
AZF_API const azf_value *azf_invocation_return_value(const azf_invocation *inv);
AZF_API const char *azf_invocation_error_message(const azf_invocation *inv);
AZF_API const char *azf_invocation_error_stack(const azf_invocation *inv);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_REGISTRY_H */
