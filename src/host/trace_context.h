/* W3C Trace Context for the local runner: each request gets the trace context a host
 * would give it, so context.trace_context is real and OpenTelemetry spans nest. */
#ifndef AZF_HOST_TRACE_CONTEXT_H
#define AZF_HOST_TRACE_CONTEXT_H

#include <stddef.h>

#define AZF__TRACE_PARENT_LEN 55 /* "00-" 32 hex "-" 16 hex "-" 2 hex */

/* The runner's span for one request, as a version-00 traceparent in out: it continues
 * `incoming` (the request's traceparent header; NULL or invalid: a new sampled trace)
 * with the same trace id and flags and a new span id. Returns 1 when it continued the
 * incoming trace (its tracestate header then goes along), 0 for a new trace. */
int azf__trace_parent_new(const char *incoming, char out[AZF__TRACE_PARENT_LEN + 1]);

/* n random bytes for ids (invocation ids, trace and span ids), from getrandom, any
 * thread. */
void azf__random_bytes(void *out, size_t n);
/* n bytes as 2n lower-case hex digits and a NUL. */
void azf__hex(char *out, const unsigned char *bytes, size_t n);

#endif
