/* Internal interfaces of `azfunc start`, split by concern so each part can change on its
 * own: runner.c (setup, output, the main loop), runner_http.c (the HTTP front: evhttp,
 * its limits, replies), runner_route.c (routing a request to a function or the admin
 * API), runner_invoke.c (starting invocations and answering them), runner_timer.c
 * (timer triggers), runner_shutdown.c (signals and draining). One libevent loop thread
 * owns all of it; only on_complete runs on other threads. */
#ifndef AZF_HOST_RUNNER_INTERNAL_H
#define AZF_HOST_RUNNER_INTERNAL_H

#include "host/bindings.h"
#include "host/runner.h"
#include "host/schedule.h"

#include <event2/event.h>
#include <event2/http.h>
#include <pthread.h>
#include <time.h>

typedef struct runner runner;

/* One invocation in flight: an HTTP request, an admin call or a timer tick. */
typedef struct call {
    runner *r;
    azf_invocation *inv;
    struct evhttp_request *req; /* NULL: no HTTP reply (admin, timer) or client gone */
    struct timespec started;
    struct call *next; /* the completed queue */
    /* storage (bindings.h): why the input/output step failed, and who waits for the
     * outcome (a queue or blob trigger) */
    char *binding_error;
    azf__settled_fn settled;
    void *settled_arg;
} call;

typedef struct timer {
    runner *r;
    const azf_function *fn;
    azf__schedule sched;
    struct event *ev;
    time_t due, last;
} timer;

struct runner {
    const azf__runner_opts *o;
    azf_app *app;
    azf__settings settings;
    struct event_base *base;
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *wake, *sigint, *sigterm, *deadline;
    pthread_mutex_t mu; /* guards done, inflight, the output */
    call *done;
    int inflight, replying, stopping, local_time;
    timer *timers;
    size_t ntimers;
    char *stream_host; /* the app's own HTTP server (HTTP streaming), or NULL */
    int stream_port;
    int exit_code;
    /* storage triggers and bindings (bindings.h): the input/output step, the queue and
     * blob triggers, and the invocations they post from their threads */
    azf__bindings *bindings;
    azf__triggers *triggers;
    azf__emulator *emulator;
    struct azf__posted *posted; /* guarded by mu */
    struct event *post_ev;
};

/* ---- output (runner.c) ---- */
enum { C_NONE, C_RED, C_GREEN, C_YELLOW, C_CYAN, C_GREY };
/* One timestamped line on stdout, in colour when enabled. */
void azf__say(int color, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define say azf__say
void azf__on_python_log(int level, const char *category, const char *message, void *user_data);
void azf__on_user_log(azf_invocation *inv, int level, const char *category, const char *message,
                      void *user_data);

/* ---- Python (runner_python.c) ---- */
/* Opens r->app with the Python the options and the rule pick and says which Python,
 * venv and libazfunc serve it; on failure prints the cause and a hint to stderr.
 * 0 or the azf__app_open error. */
int azf__runner_open_app(runner *r, azf__app_report_fn report);

/* ---- HTTP front (runner_http.c) ---- */
/* Creates the evhttp server with its limits and binds it; 0 or -1 (printed). */
int azf__http_start(runner *r);
const char *azf__http_method_name(enum evhttp_cmd_type m);
void azf__http_reply_text(struct evhttp_request *req, int code, const char *reason,
                          const char *text);

/* ---- routing (runner_route.c) ---- */
/* evhttp's callback for every request. */
void azf__route_request(struct evhttp_request *req, void *arg);
int azf__is_http(const azf_function *fn);

/* ---- invocations (runner_invoke.c) ---- */
/* Creates and starts an invocation with `input` (owned) for the trigger. NULL when it
 * could not start (the reason is printed). */
call *azf__start_call(runner *r, const azf_function *fn, azf_value *input, const char *reason,
                      struct evhttp_request *req);
/* The request as the host hands it to a worker; NULL when out of memory. */
azf_value *azf__request_value(runner *r, struct evhttp_request *req, const char *path,
                              const char *query, azf_value_map *route);
/* azf__start_call with trigger metadata (owned) too. */
call *azf__start_call_metadata(runner *r, const azf_function *fn, azf_value *input,
                               azf_value_map *metadata, const char *reason);
/* Any thread (a storage trigger's, as azf__fire_fn): queues an invocation of fn for
 * the loop thread; settled(succeeded, arg) follows exactly once when 0 is returned.
 * input and metadata are owned in every case. Returns 0 or AZF_E_NOMEM. */
int azf__post_call(void *runner, const azf_function *fn, azf_value *input, azf_value_map *metadata,
                   const char *reason, azf__settled_fn settled, void *arg);
/* The loop's post event: starts the posted invocations. */
void azf__on_post(evutil_socket_t fd, short what, void *arg);
/* Answers to this request are no longer wanted (the client went away). */
void azf__on_connection_close(struct evhttp_connection *con, void *arg);
/* The loop's wake event: finishes the completed invocations. */
void azf__on_wake(evutil_socket_t fd, short what, void *arg);
/* Frees the completed invocations left when the loop has ended. */
void azf__drop_done(runner *r);

/* ---- HTTP streaming (runner_stream.c) ---- */
/* Serves HTTP functions through the app's own server at uri (its HttpUri); 0 or -1. */
int azf__stream_set_uri(runner *r, const char *uri);
/* Starts the invocation and proxies req to the app's server (route: borrowed). */
void azf__stream_request(runner *r, struct evhttp_request *req, const azf_function *fn,
                         azf_value_map *route);

/* ---- timers (runner_timer.c) ---- */
azf_value *azf__timer_value(time_t last, time_t next, int past_due);
void azf__setup_timers(runner *r);
void azf__stop_timers(runner *r);
void azf__free_timers(runner *r);

/* ---- storage (runner_storage.c) ---- */
/* After indexing: the storage emulator when the app wants it, the input/output step
 * and the queue and blob triggers. 0, or -1 when the app cannot start (printed). */
int azf__runner_storage_start(runner *r);
/* SIGINT/SIGTERM: the triggers stop polling. */
void azf__runner_storage_stop(runner *r);
/* After the loop: waits for the triggers, frees the step, stops the emulator. */
void azf__runner_storage_free(runner *r);

/* ---- signals and shutdown (runner_shutdown.c) ---- */
void azf__on_signal(evutil_socket_t sig, short what, void *arg);
/* Ends the loop once stopping and nothing is running or being written. */
void azf__maybe_exit(runner *r);
/* A reply has been written out (evhttp's on-complete callback; arg is the runner). */
void azf__on_sent(struct evhttp_request *req, void *arg);

#endif
