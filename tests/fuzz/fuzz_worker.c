/* Fuzz target: gRPC frames from a host into the worker's receive path (frame reader,
 * codec, dispatch table, every conversation area), with a fake app of native handlers
 * (no Python): "fid-echo" returns its input, "fid-fail" fails, "fid-hold" completes only
 * when cancelled or at the end of the input. The worker is never connected: what it
 * sends goes to a sink that checks it, and what it would run on the app thread runs
 * inline after each message. Checks: every message the worker sends decodes, and it
 * never sends more InvocationResponses than it was sent InvocationRequests.
 *
 * Input: gRPC frames (1 flag byte, 4-byte big-endian length, message), up to 64 KiB per
 * message. Seeds: tests/fuzz/corpus/worker (tests/fuzz/make_worker_seeds.py). */
#include "worker/worker_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_HELD 64

static azf_invocation *held[MAX_HELD];
static size_t n_held;
static size_t n_requests, n_responses;

static void sink(const uint8_t *data, size_t len, void *ud)
{
    (void)ud;
    azf__msg *m = NULL;
    azf__errmsg err;
    if (azf__codec_unpack(data, len, &m, &err) != 0) {
        fprintf(stderr, "the worker sent what the codec refuses: %s\n", err.text);
        abort();
    }
    if (m->content_case == AZF__PB_CASE(INVOCATION_RESPONSE) && ++n_responses > n_requests)
        abort(); /* more responses than requests */
    azf__msg_free(m);
}

static int echo(azf_invocation *inv, void *ud)
{
    (void)ud;
    const azf_value *in = azf_invocation_input(inv, "req");
    azf_value *out = NULL;
    if (in && azf_value_copy(&out, in) == 0 && azf_invocation_set_return(inv, out) != 0)
        azf_value_free(out);
    return azf_invocation_complete(inv);
}

static int fail(azf_invocation *inv, void *ud)
{
    (void)ud;
    return azf_invocation_fail(inv, "ValueError: told to fail", "stack");
}

static int hold(azf_invocation *inv, void *ud)
{
    (void)ud;
    if (n_held == MAX_HELD)
        return azf_invocation_fail(inv, "RuntimeError: too many held", "");
    held[n_held++] = inv;
    return 0;
}

/* Completes the held invocations (the invocation is the worker's once completed). */
static void release_held(azf_invocation *only)
{
    for (size_t i = 0; i < n_held;) {
        if (only && held[i] != only) {
            i++;
            continue;
        }
        azf_invocation *inv = held[i];
        held[i] = held[--n_held];
        if (only)
            azf_invocation_complete_cancelled(inv);
        else
            azf_invocation_complete(inv);
    }
}

static void cancel(azf_invocation *inv, void *ud)
{
    (void)ud;
    release_held(inv);
}

/* The provider's drain (WorkerTerminate, end of stream): held invocations complete. */
static int drain(int timeout_ms, void *ud)
{
    (void)timeout_ms, (void)ud;
    release_held(NULL);
    return 0;
}

static void add(azf_registry *reg, const char *name, const char *id, azf_invoke_fn fn)
{
    char meta[512];
    snprintf(meta, sizeof meta,
             "{\"name\": \"%s\", \"functionId\": \"%s\", \"bindings\": ["
             "{\"name\": \"req\", \"type\": \"httpTrigger\", \"direction\": \"in\"},"
             "{\"name\": \"$return\", \"type\": \"http\", \"direction\": \"out\"}]}",
             name, id);
    azf_handler *h;
    if (azf_handler_new(&h) || azf_handler_set_invoke(h, fn) || azf_handler_set_cancel(h, cancel) ||
        azf_registry_add(reg, meta, h, NULL))
        abort();
    azf_handler_free(h);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    azf_registry *reg;
    azf_worker_opts *o;
    azf_worker *w;
    azf_worker_provider *p;
    if (azf_registry_new(&reg) || azf_worker_opts_new(&o) || azf_worker_provider_new(&p) ||
        azf_worker_provider_set_drain(p, drain) || azf_worker_opts_set_provider(o, p, NULL) ||
        azf_worker_opts_set_uri(o, "http://127.0.0.1:1/") || azf_worker_opts_set_registry(o, reg))
        abort();
    azf_worker_provider_free(p);
    add(reg, "echo", "fid-echo", echo);
    add(reg, "fail", "fid-fail", fail);
    add(reg, "hold", "fid-hold", hold);
    if (azf_worker_new(&w, o))
        abort();
    azf__worker_set_sink(w, sink, NULL);
    azf_frame_reader *r;
    if (azf_frame_reader_new(&r, 65536))
        abort();
    while (size) {
        size_t used = 0;
        int rc = azf_frame_reader_feed(r, data, size, &used);
        data += used;
        size -= used;
        if (rc != 1)
            break;
        const uint8_t *msg;
        size_t len;
        if (azf_frame_reader_message(r, &msg, &len))
            abort();
        /* An InvocationRequest, whether the codec takes it or not (same rule as the
         * worker's: a refused one is answered when its id can be read). */
        const char *id;
        size_t n;
        azf__msg *m = NULL;
        azf__errmsg err;
        if (azf__codec_unpack(msg, len, &m, &err) == 0)
            n_requests += m->content_case == AZF__PB_CASE(INVOCATION_REQUEST);
        else
            n_requests += azf__codec_peek_invocation_id(msg, len, &id, &n);
        azf__msg_free(m);
        azf__worker_receive(w, msg, len);
        azf__worker_run_jobs(w);
    }
    azf_frame_reader_free(r);
    /* The end of the stream: what still runs is answered (held ones complete now). */
    azf__invocations_drain(w, 0);
    azf_worker_free(w);
    azf_worker_opts_free(o);
    azf_registry_free(reg);
    n_requests = n_responses = 0;
    return 0;
}
