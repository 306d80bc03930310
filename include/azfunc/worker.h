/* libazfunc — worker layer: the Functions host conversation over FunctionRpc.
 *
 * What azfunc-worker does:
 *     azf_worker_opts *o; azf_worker_opts_new(&o);
 *     if (azf_worker_opts_from_args(o, argc, argv)) { fprintf(stderr, "%s\n",
 * azf_worker_opts_errmsg(o)); ... } azf_worker *w; azf_worker_new(&w, o); int rc =
 * azf_worker_run(w);   // returns when the conversation is over
 *
 * Threads: azf_worker_run makes the calling thread the I/O thread (it owns the
 * socket and the HTTP/2 session). azf_worker_stop may be called from any thread;
 * everything else follows the default rule (one thread at a time).
 */
#ifndef AZFUNC_WORKER_H
#define AZFUNC_WORKER_H

#include "azfunc/common.h"
#include "azfunc/registry.h"
#include "azfunc/transport.h"
#include "azfunc/value.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct azf_worker_opts azf_worker_opts;

/* Defaults: no host (azf_worker_new refuses options without a URI), max message
 * length AZF_FRAME_MAX_LENGTH, transport defaults (connect timeout 5 s, TLS
 * verification on). Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_worker_opts_new(azf_worker_opts **out);
AZF_API void azf_worker_opts_free(azf_worker_opts *o);

/* The host's gRPC address, "http://host:port/" (h2c) or "https://host:port/" (TLS).
 * Copied. Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_worker_opts_set_uri(azf_worker_opts *o, const char *uri);

/* The --workerId (sent in StartStream) and --requestId (stamped on the messages
 * the worker sends) values. Copied. Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_worker_opts_set_worker_id(azf_worker_opts *o, const char *id);
AZF_API int azf_worker_opts_set_request_id(azf_worker_opts *o, const char *id);

/* Largest accepted incoming message (0: AZF_FRAME_MAX_LENGTH). */
AZF_API int azf_worker_opts_set_max_message_length(azf_worker_opts *o, size_t len);

/* The transport options used for the connection (TLS files, verification,
 * connect timeout). Borrowed: valid until azf_worker_opts_free; configure it with
 * the azf_transport_opts_set_* functions. The max message length is the worker's. */
AZF_API azf_transport_opts *azf_worker_opts_transport(azf_worker_opts *o);

/* Reads the host's command line (host-protocol §2.1). Both families are accepted:
 *   --host H --port P --workerId W --requestId R --grpcMaxMessageLength N
 *   --functions-uri U --functions-worker-id W --functions-request-id R
 *   --functions-grpc-max-message-length N
 * The --functions-* values win over the legacy ones whatever their order. Both
 * "--flag value" and "--flag=value" work. Unknown flags are ignored, with the
 * value that follows them when it does not start with "--"; other arguments are
 * ignored. TLS: --tls-ca-file F, --tls-ca-dir D, --tls-cert F, --tls-key F,
 * --tls-server-name N, --tls-insecure (no verification), and the environment
 * variables AZF_TLS_CA_FILE, AZF_TLS_CA_DIR, AZF_TLS_CERT, AZF_TLS_KEY,
 * AZF_TLS_SERVER_NAME, AZF_TLS_INSECURE=1 (flags win); --connect-timeout-ms MS.
 * argv[0] (the program name) is skipped; argv is borrowed for the call (values are copied).
 * Returns 0, AZF_E_INVALID (a bad or missing value, or no host address at all;
 * see azf_worker_opts_errmsg) or AZF_E_NOMEM. */
AZF_API int azf_worker_opts_from_args(azf_worker_opts *o, int argc, const char *const *argv);

/* The last error of azf_worker_opts_from_args (never NULL). */
AZF_API const char *azf_worker_opts_errmsg(const azf_worker_opts *o);

/* The resolved host URI (borrowed; "" when none). */
AZF_API const char *azf_worker_opts_uri(const azf_worker_opts *o);

/* ---- the app provider -------------------------------------------------------
 * The worker runs functions only through the registry's handlers (registry.h). What
 * depends on the language (indexing an app, loading one function, the environment,
 * draining running work) comes from a provider: an opaque table of callbacks, copied
 * into the options, all receiving the user_data of azf_worker_opts_set_provider last.
 * azfunc-worker's provider is the Python adapter; a native worker fills the registry
 * itself and may leave every callback unset.
 *
 * Threads: the worker calls every provider callback on one thread of its own (the
 * app thread), one at a time and in the order the host's requests arrived, never on
 * the I/O thread; callbacks may block (import code, take the GIL). They must not call
 * azf_worker_run, azf_worker_free or azf_worker_stop; azf_worker_log is fine.
 *
 * Errors: a callback that fails returns a negative AZF_E_* code and may put the
 * official exception text in `message` ("<Type>: <message>") and the stack frames in
 * `stack` (both empty azf_bufs owned by the worker; fill them with azf_buf_set).
 * Without a message the host sees "<azf_strerror(code)>". */
typedef struct azf_worker_provider azf_worker_provider;

/* FunctionsMetadataRequest (host-protocol §3.4), called at most once: index the app in
 * app_dir (borrowed) and add its functions to reg (the worker's registry, borrowed for
 * the call) with their handlers. Returns the number of functions added (0: the host
 * is told to read function.json itself, use_default_metadata_indexing) or an error,
 * which is the metadata response's Failure and fails the loads of worker-indexed
 * functions. Also called on the first FunctionLoadRequest whose metadata has the
 * worker_indexed property when no metadata request came (several worker processes). */
typedef int (*azf_worker_index_fn)(const char *app_dir, azf_registry *reg, azf_buf *message,
                                   azf_buf *stack, void *user_data);

/* FunctionLoadRequest (§3.5) for a function that is not registered yet. function_id and
 * metadata_json are borrowed for the call; the JSON is the host's RpcFunctionMetadata:
 *   {"name", "directory", "scriptFile", "entryPoint", "isProxy",
 *    "bindings": {"<name>": {"type", "direction": "in"|"out"|"inout",
 *                            "dataType": "undefined"|"string"|"binary"|"stream"}},
 *    "properties": {...}}
 * v1 (no worker_indexed property): fn is NULL; on success the worker adds the function to
 * its registry from <directory>/function.json, with the v1 handler (see
 * azf_worker_provider_set_v1_handler) and the request's id.
 * worker_indexed: the worker has run the index callback; fn is the function of that id,
 * NULL when the index does not have it. Returns 0 (Success) or an error (Failure,
 * remembered: invocations of the function fail with it). Unset: a v1 load succeeds
 * once the function is registered; a worker_indexed one when the index has the id. */
typedef int (*azf_worker_load_fn)(const char *function_id, const char *metadata_json,
                                  const azf_function *fn, azf_buf *message, azf_buf *stack,
                                  void *user_data);

/* FunctionEnvironmentReloadRequest (§3.8): replace the environment with env (a map of
 * string values, borrowed for the call) and use app_dir (borrowed; "" when not sent).
 * Returns 0 or an error (the response's Failure). Unset: the reload succeeds. */
typedef int (*azf_worker_reload_fn)(const azf_value_map *env, const char *app_dir, azf_buf *message,
                                    azf_buf *stack, void *user_data);

/* WorkerInitRequest (host-protocol §3.3) and, after the reload callback, every
 * FunctionEnvironmentReloadRequest (§3.8): set up what the settings ask for (an embedded
 * runtime's telemetry, init indexing, an HTTP server) and add the conditional
 * capabilities to caps (string values; owned by the worker), e.g. HttpUri once a server
 * listens on http_host (the address of the worker's --host / --functions-uri, borrowed).
 * app_dir: borrowed, "" when not sent. An error is the response's Failure. Unset: the
 * worker advertises only its fixed capabilities. */
typedef int (*azf_worker_init_fn)(const char *app_dir, const char *http_host, azf_value_map *caps,
                                  azf_buf *message, azf_buf *stack, void *user_data);

/* WorkerTerminate, or the end of the stream: stop taking invocations and complete every
 * running one within timeout_ms. Invocations still running afterwards are answered by
 * the worker with a Failure; their handler may still complete them later. Returns
 * any value (ignored). */
typedef int (*azf_worker_drain_fn)(int timeout_ms, void *user_data);

/* Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_worker_provider_new(azf_worker_provider **out);
AZF_API void azf_worker_provider_free(azf_worker_provider *p);
/* Setters: NULL unsets. Return 0 or AZF_E_INVALID. */
AZF_API int azf_worker_provider_set_index(azf_worker_provider *p, azf_worker_index_fn fn);
AZF_API int azf_worker_provider_set_load(azf_worker_provider *p, azf_worker_load_fn fn);
AZF_API int azf_worker_provider_set_reload(azf_worker_provider *p, azf_worker_reload_fn fn);
AZF_API int azf_worker_provider_set_drain(azf_worker_provider *p, azf_worker_drain_fn fn);
AZF_API int azf_worker_provider_set_init(azf_worker_provider *p, azf_worker_init_fn fn);
/* The handler given to v1 functions added from a FunctionLoadRequest (copied; NULL:
 * none, their invocations fail), with handler_user_data as their user_data (borrowed
 * until the registry is freed; the handler's release callback, if set, runs once per
 * such function then). */
AZF_API int azf_worker_provider_set_v1_handler(azf_worker_provider *p, const azf_handler *h,
                                               void *handler_user_data);

/* The provider (copied; NULL: none) and the user_data its callbacks receive
 * (borrowed until azf_worker_free). Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_worker_opts_set_provider(azf_worker_opts *o, const azf_worker_provider *p,
                                         void *user_data);

/* The registry whose functions the worker serves (borrowed: it must outlive the
 * worker; NULL: the worker makes its own). A native worker fills it before
 * azf_worker_run: the metadata response lists every function of the registry (with
 * those an index callback added); none gives use_default_metadata_indexing.
 * Returns 0 or AZF_E_INVALID. */
AZF_API int azf_worker_opts_set_registry(azf_worker_opts *o, azf_registry *reg);

/* WorkerMetadata.runtime_name and runtime_version (copied; defaults "python" and the
 * Python version found at build time). azfunc-worker sets the version of the
 * interpreter it runs. Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_worker_opts_set_runtime(azf_worker_opts *o, const char *name, const char *version);

/* A worker that cannot serve (its runtime failed to start): message (copied; NULL
 * clears) goes to the host as the WorkerInitResponse's Failure exception, so the
 * host shows why instead of a worker that exited. Returns 0, AZF_E_INVALID or
 * AZF_E_NOMEM. */
AZF_API int azf_worker_opts_set_init_error(azf_worker_opts *o, const char *message);

typedef struct azf_worker azf_worker;

/* Creates a worker from options (copied). Returns 0, AZF_E_INVALID (no URI),
 * AZF_E_NOMEM. */
AZF_API int azf_worker_new(azf_worker **out, const azf_worker_opts *opts);
AZF_API void azf_worker_free(azf_worker *w);

/* Connects to the host (within the connect timeout), sends StartStream and holds
 * the conversation until it ends. Returns:
 *   0                 WorkerTerminate was handled (drained within its grace
 *                     period), the host ended the stream with grpc-status OK, or
 *                     azf_worker_stop was called;
 *   AZF_E_CONNECT / AZF_E_TIMEOUT / AZF_E_TLS  the host could not be reached;
 *   AZF_E_CLOSED      the host ended the stream with an error status or dropped
 *                     the connection;
 *   AZF_E_TOOBIG      the host stopped reading while it went on sending: more than
 *                     128 MiB waited to be sent, and the worker ended the conversation
 *                     (as a gRPC server does with RESOURCE_EXHAUSTED);
 *   AZF_E_PROTOCOL, AZF_E_IO, AZF_E_NOMEM, AZF_E_STATE (already run).
 * azf_worker_errmsg says what happened in every case. */
AZF_API int azf_worker_run(azf_worker *w);

/* Any thread: ends azf_worker_run gracefully (flushes, closes the stream).
 * Returns 0 or AZF_E_INVALID. */
AZF_API int azf_worker_stop(azf_worker *w);

/* The registry the worker serves (its own or the one of azf_worker_opts_set_registry).
 * Borrowed until azf_worker_free. */
AZF_API azf_registry *azf_worker_registry(azf_worker *w);

/* Any thread, also from provider callbacks: sends a System RpcLog (no invocation id)
 * once the stream is up; dropped before and after. level is AZF_LOG_*; category and
 * message are copied (NULL category: "azfunc.worker"). Returns 0, AZF_E_INVALID. */
AZF_API int azf_worker_log(azf_worker *w, int level, const char *category, const char *message);

/* What ended the run, or the last error (never NULL). */
AZF_API const char *azf_worker_errmsg(const azf_worker *w);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_WORKER_H */
