/* Internal structures of the transport layer shared by its files. */
#ifndef AZF_TRANSPORT_INTERNAL_H
#define AZF_TRANSPORT_INTERNAL_H

#include "azfunc/transport.h"
#include "common/common_internal.h"

#include <stdatomic.h>

struct azf_transport_opts {
    size_t max_message_length;
    uint32_t connect_timeout_ms;
    int tls_verify;
    char *ca_file, *ca_dir, *cert_file, *key_file, *server_name;
};

struct azf_transport_callbacks {
    azf_on_message_fn on_message;
    azf_on_stream_close_fn on_stream_close;
    azf_on_error_fn on_error;
};

/* Deep copy of options (dst is zeroed first); NULL src gives the defaults. */
int azf__transport_opts_copy(azf_transport_opts *dst, const azf_transport_opts *src);
void azf__transport_opts_clear(azf_transport_opts *o);
/* Replaces dst's settings with a deep copy of src's (NULL: defaults). */
int azf__transport_opts_copy_into(azf_transport_opts *dst, const azf_transport_opts *src);

/* Session helpers for the driver. busy: queued data or a pending end of stream.
 * abort: reports every open stream closed with the status, and forgets them. */
int azf__session_busy(const azf_session *s);
int azf__session_has_streams(const azf_session *s);
void azf__session_close_all(azf_session *s, int grpc_status);
void azf__session_abort(azf_session *s, int grpc_status, const char *message);
/* The session subtracts from *counter the bytes of every message it takes off its
 * queues (sent, or dropped with its stream); the driver adds them when it accepts one. */
void azf__session_count_queued(azf_session *s, atomic_size_t *counter);

/* Bytes accepted by azf_driver_send and not yet handed to HTTP/2 (any thread): what a
 * peer that stops reading makes pile up. (Reading is not paused in turn: the peer's
 * WINDOW_UPDATE frames must still be read for anything to go out.) */
size_t azf__driver_queued(const azf_driver *d);

/* Before the loop sleeps in epoll_wait, it polls for up to poll_us (0: never, the
 * default) after each wake-up. For a worker at one request in flight: the next
 * request finds the I/O thread awake. Set before azf_driver_run. */
void azf__driver_set_poll(azf_driver *d, uint32_t poll_us);

#endif
