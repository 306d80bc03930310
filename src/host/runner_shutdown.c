/* `azfunc start`, shutdown: SIGINT/SIGTERM stop accepting and timers, then the loop ends
 * when the running invocations are answered or the grace period is over. */
#include "host/runner_internal.h"

#include <signal.h>

void azf__maybe_exit(runner *r)
{
    if (r->stopping && r->inflight == 0 && r->replying == 0)
        event_base_loopexit(r->base, NULL);
}

/* A reply has been written out: shutdown waits for these too. */
void azf__on_sent(struct evhttp_request *req, void *arg)
{
    runner *r = arg;
    (void)req;
    r->replying--;
    azf__maybe_exit(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    runner *r = arg;
    (void)fd, (void)what;
    say(C_YELLOW, "%d invocation(s) still running after the shutdown grace period", r->inflight);
    event_base_loopexit(r->base, NULL);
}

void azf__on_signal(evutil_socket_t sig, short what, void *arg)
{
    runner *r = arg;
    (void)what;
    if (r->stopping)
        return;
    r->stopping = 1;
    say(C_NONE, "%s received: stopping (waiting for %d invocation(s))",
        sig == SIGINT ? "SIGINT" : "SIGTERM", r->inflight);
    if (r->bound)
        evhttp_del_accept_socket(r->http, r->bound);
    r->bound = NULL;
    azf__stop_timers(r);
    azf__runner_storage_stop(r);
    struct timeval tv = {r->o->grace_ms / 1000, (r->o->grace_ms % 1000) * 1000};
    r->deadline = evtimer_new(r->base, on_deadline, r);
    evtimer_add(r->deadline, &tv);
    azf__maybe_exit(r);
}
