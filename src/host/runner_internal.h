/* Internal interfaces of `azfunc start`, split by concern so each part can change on its
 * own: runner.c (setup, output, the main loop), runner_http.c (the HTTP front: evhttp,
 * its limits, replies), runner_route.c (routing a request to a function or the admin
 * API), runner_invoke.c (starting invocations and answering them), runner_timer.c
 * (timer triggers), runner_shutdown.c (signals and draining). One libevent loop thread
 * owns all of it; only on_complete runs on other threads. */
#ifndef AZF_HOST_RUNNER_INTERNAL_H
#define AZF_HOST_RUNNER_INTERNAL_H

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
};

/* ---- output (runner.c) ---- */
enum { C_NONE, C_RED, C_GREEN, C_YELLOW, C_CYAN, C_GREY };
/* One timestamped line on stdout, in colour when enabled. */
void azf__say(int color, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define say azf__say
void azf__on_user_log(azf_invocation *inv, int level, const char *category, const char *message,
                      void *user_data);

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

/* ---- signals and shutdown (runner_shutdown.c) ---- */
void azf__on_signal(evutil_socket_t sig, short what, void *arg);
/* Ends the loop once stopping and nothing is running or being written. */
void azf__maybe_exit(runner *r);
/* A reply has been written out (evhttp's on-complete callback; arg is the runner). */
void azf__on_sent(struct evhttp_request *req, void *arg);

#endif
