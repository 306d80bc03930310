/* libazfunc — transport layer: gRPC over HTTP/2 (nghttp2) with TLS (OpenSSL).
 *
 * Two levels:
 *  - azf_session: a no-I/O gRPC-over-HTTP/2 session in the client or the server role.
 *    Bytes in (azf_session_recv), bytes out (azf_session_output); no sockets, no
 *    timers, no threads. Embedders drive it from their own event loop:
 *        on readable fd:  read bytes (decrypt them if TLS), azf_session_recv(s, buf, n)
 *        then, and whenever a message was queued:
 *            while (azf_session_output(s, &p, &n) == 0 && n) write p[0..n) to the peer
 *        close the connection when !azf_session_want_read(s) && !azf_session_want_write(s).
 *    The session needs no timers (PING is answered by nghttp2 itself).
 *  - azf_driver: owns sockets, TLS and an epoll loop, and runs sessions. Its
 *    outgoing queue may be used from any thread (woken by an eventfd).
 *
 * Messages in and out are complete gRPC message payloads (the serialized protobuf,
 * without the 5-byte gRPC frame header). The RPC is the FunctionRpc EventStream:
 * POST AZF_GRPC_EVENTSTREAM_PATH, content-type application/grpc, te: trailers,
 * grpc-status / grpc-message trailers.
 *
 * Stream handles (uint64_t): a session uses the HTTP/2 stream id; a driver puts a
 * connection number in the high 32 bits, so a server driver can tell its clients apart.
 *
 * Signals: the driver writes to sockets with MSG_NOSIGNAL, but OpenSSL writes TLS
 * records with write(2): a process using TLS should ignore SIGPIPE (azfunc-worker does).
 *
 * Thread safety: the default (one thread at a time) holds for azf_session and
 * azf_transport_opts / azf_transport_callbacks. The azf_driver functions marked
 * "any thread" may be called concurrently with azf_driver_run.
 */
#ifndef AZFUNC_TRANSPORT_H
#define AZFUNC_TRANSPORT_H

#include "azfunc/common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define AZF_GRPC_EVENTSTREAM_PATH "/AzureFunctionsRpcMessages.FunctionRpc/EventStream"

/* Session and driver roles. */
enum { AZF_ROLE_CLIENT = 0, AZF_ROLE_SERVER = 1 };

/* gRPC status codes (the grpc-status trailer). */
enum {
    AZF_GRPC_OK = 0,
    AZF_GRPC_CANCELLED = 1,
    AZF_GRPC_UNKNOWN = 2,
    AZF_GRPC_INVALID_ARGUMENT = 3,
    AZF_GRPC_DEADLINE_EXCEEDED = 4,
    AZF_GRPC_RESOURCE_EXHAUSTED = 8,
    AZF_GRPC_UNIMPLEMENTED = 12,
    AZF_GRPC_INTERNAL = 13,
    AZF_GRPC_UNAVAILABLE = 14
};

/* ---- Options ------------------------------------------------------------ */

typedef struct azf_transport_opts azf_transport_opts;

/* Defaults: max message length AZF_FRAME_MAX_LENGTH (the host's int.MaxValue),
 * connect timeout 5000 ms, TLS verification on, system CA store.
 * Returns 0 or AZF_E_NOMEM / AZF_E_INVALID. */
AZF_API int azf_transport_opts_new(azf_transport_opts **out);
AZF_API void azf_transport_opts_free(azf_transport_opts *o);

/* Largest accepted incoming message (0: AZF_FRAME_MAX_LENGTH). A longer message
 * fails its stream: the server answers grpc-status RESOURCE_EXHAUSTED (8), the
 * client resets the stream; both report status 8 through on_stream_close. */
AZF_API int azf_transport_opts_set_max_message_length(azf_transport_opts *o, size_t len);

/* Client: bound on TCP connect plus TLS handshake, in milliseconds (0: 5000).
 * Refused connections are retried within this time, like a gRPC channel. */
AZF_API int azf_transport_opts_set_connect_timeout_ms(azf_transport_opts *o, uint32_t ms);

/* TLS. Strings are copied; NULL clears. A client uses TLS for https:// URIs; a
 * server uses TLS when a certificate is set. ca_file / ca_dir: trust anchors
 * (default: the system store). cert/key: the server's certificate, or the
 * client's certificate for mutual TLS. server_name: SNI and the name checked in
 * the server certificate (default: the URI host). Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_transport_opts_set_tls_ca_file(azf_transport_opts *o, const char *path);
AZF_API int azf_transport_opts_set_tls_ca_dir(azf_transport_opts *o, const char *path);
AZF_API int azf_transport_opts_set_tls_cert_file(azf_transport_opts *o, const char *path);
AZF_API int azf_transport_opts_set_tls_key_file(azf_transport_opts *o, const char *path);
AZF_API int azf_transport_opts_set_tls_server_name(azf_transport_opts *o, const char *name);

/* Certificate verification (on by default). verify = 0 accepts any server
 * certificate: for tests only. */
AZF_API int azf_transport_opts_set_tls_verify(azf_transport_opts *o, int verify);

/* ---- Callbacks ---------------------------------------------------------- */

typedef struct azf_transport_callbacks azf_transport_callbacks;

/* A complete message arrived on `stream`. msg is borrowed until the callback
 * returns. Return 0 to go on, or AZF_E_USER to fail the connection. */
typedef int (*azf_on_message_fn)(uint64_t stream, const uint8_t *msg, size_t len, void *user_data);

/* The stream is finished: grpc_status is the trailer status (received from a
 * server, or sent by a server session); for resets and lost connections a
 * status is derived (CANCELLED, UNAVAILABLE, INTERNAL, RESOURCE_EXHAUSTED).
 * message is borrowed for the call ("" when none). */
typedef void (*azf_on_stream_close_fn)(uint64_t stream, int grpc_status, const char *message,
                                       void *user_data);

/* A connection-level failure (bad bytes, protocol error, GOAWAY with an error,
 * TLS or I/O error). code is an AZF_E_* code; message is borrowed for the call. */
typedef void (*azf_on_error_fn)(int code, const char *message, void *user_data);

/* Callbacks are copied when a session or driver is created. They run on the
 * thread that drives the session (azf_session_recv / azf_driver_run) and must not
 * free the session or driver that called them; calling azf_session_send/close
 * or any azf_driver "any thread" function from them is allowed. */
AZF_API int azf_transport_callbacks_new(azf_transport_callbacks **out);
AZF_API void azf_transport_callbacks_free(azf_transport_callbacks *cbs);
AZF_API int azf_transport_callbacks_set_on_message(azf_transport_callbacks *cbs,
                                                   azf_on_message_fn fn);
AZF_API int azf_transport_callbacks_set_on_stream_close(azf_transport_callbacks *cbs,
                                                        azf_on_stream_close_fn fn);
AZF_API int azf_transport_callbacks_set_on_error(azf_transport_callbacks *cbs, azf_on_error_fn fn);

/* ---- No-I/O session ----------------------------------------------------- */

typedef struct azf_session azf_session;

/* Creates a session. role: AZF_ROLE_CLIENT or AZF_ROLE_SERVER. opts and cbs are
 * copied (NULL: defaults / no callbacks); user_data is passed to every callback.
 * The connection preface and SETTINGS are queued for output at once.
 * Returns 0, AZF_E_INVALID or AZF_E_NOMEM. */
AZF_API int azf_session_new(azf_session **out, int role, const azf_transport_opts *opts,
                            const azf_transport_callbacks *cbs, void *user_data);
AZF_API void azf_session_free(azf_session *s);

/* Client: opens an EventStream call (queues the request headers). authority
 * (copied; NULL: "localhost") is the :authority header; tls selects the :scheme.
 * Returns 0, AZF_E_STATE (server role or the session is over), AZF_E_NOMEM. */
AZF_API int azf_session_open_stream(azf_session *s, const char *authority, int tls,
                                    uint64_t *stream);

/* Queues one message on a stream. msg's bytes are moved into the session (owned:
 * on success *msg is reset to AZF_BUF_INIT; a buffer that does not own its bytes,
 * reserved == 0, is copied). The bytes are framed and sent without another copy
 * of the whole message. Returns 0, AZF_E_NOTFOUND (no such open stream),
 * AZF_E_STATE (the stream is closing), AZF_E_TOOBIG, AZF_E_INVALID, AZF_E_NOMEM. */
AZF_API int azf_session_send(azf_session *s, uint64_t stream, azf_buf *msg);

/* Ends our side of a stream after the queued messages. Server: sends the
 * grpc-status / grpc-message trailers (message copied, may be NULL). Client: sends
 * END_STREAM (grpc_status and message are ignored).
 * Returns 0, AZF_E_NOTFOUND, AZF_E_STATE, AZF_E_NOMEM. */
AZF_API int azf_session_close_stream(azf_session *s, uint64_t stream, int grpc_status,
                                     const char *message);

/* Resets a stream (RST_STREAM with an HTTP/2 error code, e.g. 8 = CANCEL).
 * Returns 0, AZF_E_NOTFOUND or AZF_E_NOMEM. */
AZF_API int azf_session_reset_stream(azf_session *s, uint64_t stream, uint32_t h2_error);

/* Sends GOAWAY with an HTTP/2 error code (0 = graceful) and ends the session once it
 * is flushed. Returns 0, AZF_E_STATE or AZF_E_NOMEM. */
AZF_API int azf_session_goaway(azf_session *s, uint32_t h2_error);

/* Feeds bytes received from the peer (copied as needed). Callbacks run from here.
 * Returns 0, or AZF_E_PROTOCOL (bad bytes or an HTTP/2 violation: the session is
 * over), AZF_E_USER (a callback aborted), AZF_E_NOMEM; once the session has failed,
 * every call returns that same code. azf_session_errmsg tells what happened.
 * Some violations are answered by nghttp2 with a GOAWAY first: then on_error
 * fires, and the failure shows, when that GOAWAY is taken with azf_session_output. */
AZF_API int azf_session_recv(azf_session *s, const uint8_t *data, size_t len);

/* The next bytes to write to the peer: *data is borrowed until the next call on
 * the session; *len is 0 when there is nothing to write. Call repeatedly until
 * *len is 0. Returns 0, AZF_E_NOMEM or AZF_E_PROTOCOL. */
AZF_API int azf_session_output(azf_session *s, const uint8_t **data, size_t *len);

/* Non-zero while the session wants to read / has something to write. When both
 * are 0 the connection can be closed. */
AZF_API int azf_session_want_read(const azf_session *s);
AZF_API int azf_session_want_write(const azf_session *s);

/* The last error (never NULL; "" when none). */
AZF_API const char *azf_session_errmsg(const azf_session *s);

/* ---- Driver: sockets, TLS and an epoll loop ----------------------------- */

typedef struct azf_driver azf_driver;

/* Creates a driver. opts and cbs are copied. Returns 0, AZF_E_INVALID,
 * AZF_E_NOMEM, AZF_E_IO (eventfd/epoll) or AZF_E_TLS (bad certificate/key/CA files). */
AZF_API int azf_driver_new(azf_driver **out, int role, const azf_transport_opts *opts,
                           const azf_transport_callbacks *cbs, void *user_data);

/* Frees the driver and closes its sockets. Not while azf_driver_run is running. */
AZF_API void azf_driver_free(azf_driver *d);

/* Client: connects to uri ("http://host:port[/]" for h2c with prior knowledge,
 * "https://host:port[/]" for TLS with ALPN h2) within the connect timeout, and
 * opens the EventStream call (*stream). Blocks the calling thread.
 * Returns 0, AZF_E_INVALID (bad uri), AZF_E_CONNECT (refused/unreachable until the
 * deadline), AZF_E_TIMEOUT, AZF_E_TLS (handshake/verification/ALPN), AZF_E_STATE. */
AZF_API int azf_driver_connect(azf_driver *d, const char *uri, uint64_t *stream);

/* Server: listens on host (copied; NULL: "127.0.0.1") and port (0: any free port)
 * and accepts any number of connections. Returns 0, AZF_E_IO, AZF_E_INVALID, AZF_E_STATE. */
AZF_API int azf_driver_listen(azf_driver *d, const char *host, uint16_t port);

/* Server: the bound port (after azf_driver_listen), or 0. */
AZF_API int azf_driver_port(const azf_driver *d);

/* Runs the loop on the calling thread (the I/O thread) until azf_driver_stop, a
 * finished azf_driver_shutdown, or (client) the connection ends.
 * Returns 0 (stopped, or the connection ended after the stream was closed),
 * AZF_E_CLOSED (the peer closed the connection with the stream still open),
 * AZF_E_PROTOCOL, AZF_E_TLS, AZF_E_IO, AZF_E_NOMEM. */
AZF_API int azf_driver_run(azf_driver *d);

/* Any thread: queues a message on a stream (msg moved as in azf_session_send).
 * Returns 0, AZF_E_INVALID or AZF_E_NOMEM.
 * A message for a stream that has since closed is dropped. */
AZF_API int azf_driver_send(azf_driver *d, uint64_t stream, azf_buf *msg);

/* Any thread: azf_session_close_stream through the queue. message is copied. */
AZF_API int azf_driver_close_stream(azf_driver *d, uint64_t stream, int grpc_status,
                                    const char *message);

/* Any thread: graceful end. Closes every open stream (server: grpc-status OK),
 * sends GOAWAY, and makes azf_driver_run return once everything is written or
 * timeout_ms has passed. Returns 0 or AZF_E_NOMEM. */
AZF_API int azf_driver_shutdown(azf_driver *d, uint32_t timeout_ms);

/* Any thread: makes azf_driver_run return as soon as possible. Returns 0. */
AZF_API int azf_driver_stop(azf_driver *d);

/* The last error of the driver (never NULL). Read it after azf_driver_run returned. */
AZF_API const char *azf_driver_errmsg(const azf_driver *d);

#ifdef __cplusplus
}
#endif
#endif /* AZFUNC_TRANSPORT_H */
