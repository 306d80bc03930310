/* `azfunc start`, shutdown: the first SIGINT/SIGTERM stops accepting and the timers; the
 * loop ends when the running invocations are answered or when the grace period (which
 * bounds the whole stop) is over. A second signal stops at once. The exit code says
 * whether every invocation was answered (0) or some were abandoned (3). SIGUSR1 (from
 * the supervisor, when a new version of the app is ready) stops the same way, but the
 * requests already on their way to this process are answered, not refused. */
#include "host/runner_internal.h"

#include <signal.h>
#include <stdio.h>
#include <unistd.h>

void azf__maybe_exit(runner *r)
{
    if (r->stopping && r->inflight == 0 && r->replying == 0 && r->admitted == 0)
        event_base_loopexit(r->base, NULL);
}

/* Abandons whatever still runs: Python cannot be torn down under running threads within
 * any bound, so the process ends here. */
void azf__abandon(runner *r, const char *why)
{
    say(C_YELLOW, "%s: stopping now, %d invocation(s) and %d reply(ies) abandoned", why,
        r->inflight, r->replying);
    fflush(stdout);
    _exit(AZF__EXIT_ABANDONED);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    runner *r = arg;
    (void)fd, (void)what;
    if (r->inflight == 0 && r->replying == 0) { /* only admitted connections, still silent */
        event_base_loopexit(r->base, NULL);
        return;
    }
    azf__abandon(r, "Shutdown grace period over");
}

void azf__on_signal(evutil_socket_t sig, short what, void *arg)
{
    runner *r = arg;
    (void)what;
    const char *name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "SIGUSR1";
    if (r->stopping) {
        char why[32];
        snprintf(why, sizeof why, "Second %s", name);
        azf__abandon(r, why);
        return;
    }
    r->stopping = 1;
    clock_gettime(CLOCK_MONOTONIC, &r->stop_started);
    if (sig == SIGUSR1)
        say(C_NONE, "The new version takes over: stopping (waiting for %d invocation(s))",
            r->inflight);
    else
        say(C_NONE, "%s received: stopping (waiting for %d invocation(s))", name, r->inflight);
    azf__http_stop_accepting(r);
    if (sig == SIGUSR1)
        azf__http_handover(r);
    azf__stop_timers(r);
    azf__runner_storage_stop(r);
    struct timeval tv = {r->o->grace_ms / 1000, (r->o->grace_ms % 1000) * 1000};
    r->deadline = evtimer_new(r->base, on_deadline, r);
    evtimer_add(r->deadline, &tv);
    azf__maybe_exit(r);
}

long long azf__grace_left_ms(const runner *r)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long long spent = (now.tv_sec - r->stop_started.tv_sec) * 1000LL +
                      (now.tv_nsec - r->stop_started.tv_nsec) / 1000000;
    long long left = r->o->grace_ms - spent;
    return left > 0 ? left : 0;
}
