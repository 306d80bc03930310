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
#include "azfunc/transport.h"

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
 *   AZF_E_PROTOCOL, AZF_E_IO, AZF_E_NOMEM, AZF_E_STATE (already run).
 * azf_worker_errmsg says what happened in every case. */
AZF_API int azf_worker_run(azf_worker *w);

/* Any thread: ends azf_worker_run gracefully (flushes, closes the stream).
 * Returns 0 or AZF_E_INVALID. */
AZF_API int azf_worker_stop(azf_worker *w);

/* What ended the run, or the last error (never NULL). */
AZF_API const char *azf_worker_errmsg(const azf_worker *w);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_WORKER_H */
