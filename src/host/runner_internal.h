/* Internal interfaces of `azfunc start`, split by concern so each part can change on its
 * own: runner.c (setup, output, the main loop), runner_http.c (the HTTP front: llhttp over
 * libevent bufferevents, its limits, replies), runner_route.c (routing a request to a function or
 * the admin API), runner_invoke.c (starting invocations and answering them), runner_timer.c (timer
 * triggers), runner_shutdown.c (signals and draining). One libevent loop thread owns all of it;
 * only on_complete runs on other threads. */
#ifndef AZF_HOST_RUNNER_INTERNAL_H
#define AZF_HOST_RUNNER_INTERNAL_H

#include "host/bindings.h"
#include "host/runner.h"
#include "host/schedule.h"

#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <llhttp.h>
#include <pthread.h>
#include <time.h>

typedef struct runner runner;
typedef struct conn conn; /* a client connection (runner_http.c) */

/* One HTTP request and its reply, made by the HTTP front (runner_http.c), which frees it
 * once the reply is out or the client has gone. The headers are libevent's evkeyvalq
 * (evhttp_find_header, evhttp_add_header work on them). */
typedef struct azf__http_req {
    conn *conn; /* NULL once the client has gone */
    llhttp_method_t method;
    int major, minor;       /* HTTP version */
    char *target;           /* the request-target as sent */
    struct evhttp_uri *uri; /* target, parsed */
    struct evkeyvalq in_headers, out_headers;
    struct evbuffer *in_body;  /* the body received (all of it, unless streamed) */
    struct evbuffer *out_body; /* the reply's body */
    /* the front's own state */
    int streaming;        /* dispatched at its head: the body is streamed */
    int replied;          /* the reply's end is queued (or the reply was dropped) */
    int chunked, no_body; /* the reply streamed in chunks; a reply without content */
    int body_ended, body_paused;
    int refs; /* callbacks running: not freed under them */
    void (*on_piece)(void *, struct evbuffer *);
    void (*on_end)(void *, int);
    void *body_ud;
    void (*on_drained)(void *);
    void *drained_ud;
} azf__http_req;

/* One invocation in flight: an HTTP request, an admin call or a timer tick. */
typedef struct call {
    runner *r;
    azf_invocation *inv;
    azf__http_req *req; /* NULL: no HTTP reply (admin, timer) or client gone */
    struct timespec started;
    int slot;          /* in the supervisor's table, or -1 */
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
    struct evconnlistener *listener; /* NULL once stopped accepting */
    struct event *wake, *sigint, *sigterm, *sigusr1, *deadline, *resume;
    pthread_mutex_t mu; /* guards done */
    call *done;         /* completed, for the loop (wake reads done_fd) */
    int done_fd;        /* eventfd: the first completion queued wakes the loop */
    int inflight, replying, stopping, local_time;
    int admitted; /* a handover (SIGUSR1): connections that may still send one request */
    timer *timers;
    size_t ntimers;
    char *stream_host; /* the app's own HTTP server (HTTP streaming), or NULL */
    int stream_port;
    int exit_code;
    struct timespec stop_started; /* the first stop signal */
    int listen_fd;                /* inherited listening socket, or -1: bind host:port */
    /* The effective limits (flags > host.json > defaults). */
    long long max_body, max_header_count, max_header_bytes, max_request_line, max_connections;
    long long read_timeout_ms, keep_alive_timeout_ms, function_timeout_ms;
    /* Client connections by socket fd (runner_http.c). */
    conn **conns;
    int conns_cap, nconns;
    int paused;         /* accepting paused: 1 at max_connections, 2 after an accept error */
    int accept_failing; /* accept errors said, until one succeeds again */
    /* storage triggers and bindings (bindings.h): the input/output step, the queue and
     * blob triggers, and the invocations they post from their threads */
    azf__bindings *bindings;
    azf__triggers *triggers;
    azf__emulator *emulator;
    struct azf__posted *posted; /* guarded by mu */
    struct event *post_ev;
    const char *cors;     /* allowed CORS origins (--cors, else Host.CORS), or NULL */
    int cors_credentials; /* --cors-credentials, else Host.CORSCredentials */
};

/* ---- the app process (runner.c) ---- */
/* Serves the app on o->listen_fd (or host:port) until stopped; the exit code. */
int azf__runner_serve(const azf__runner_opts *o);

/* ---- the supervisor (runner_supervisor.c) ----
 * Called in the app process; no-ops when not supervised. */
void azf__supervised_ready(runner *r);       /* serving: restarts are now worth it */
void azf__supervised_conn(int fd, int open); /* a client connection opens / closes */
/* Asks the supervisor for the storage emulator, which it runs for as long as azfunc start
 * runs; *pid: Azurite's, for AZF__EMULATOR_STARTED and _KEPT. FAILED: it said why. */
enum {
    AZF__EMULATOR_UNSUPERVISED = -1, /* no supervisor: the caller runs it itself */
    AZF__EMULATOR_FAILED,
    AZF__EMULATOR_STARTED, /* just started: not listening yet */
    AZF__EMULATOR_KEPT,    /* started before, for an earlier app process */
    AZF__EMULATOR_FOREIGN, /* something else listens on its ports */
};
int azf__supervised_emulator(int *pid);
/* A running invocation's slot, with the fd of the connection waiting for it (or -1). */
int azf__supervised_begin(const char *fn, const char *id, int conn_fd);
void azf__supervised_end(int slot);

/* ---- watching the app's files (runner_watch.c, in the supervisor) ---- */
typedef struct azf__watch azf__watch;
/* Watches dir's tree with inotify (not .venv, .python_packages, __pycache__, .azfunc,
 * .git); NULL when it cannot (said why). */
azf__watch *azf__watch_open(const char *dir);
int azf__watch_fd(const azf__watch *w);
/* Reads the pending events; a change to a *.py, function.json, host.json or
 * local.settings.json file (re)starts the quiet period. */
void azf__watch_read(azf__watch *w, long long now_ms);
/* When the quiet period after the last change ends (ms, CLOCK_MONOTONIC), or -1. */
long long azf__watch_due(const azf__watch *w);
/* 1 once the quiet period is over (and then not again until the next change). */
int azf__watch_take(azf__watch *w, long long now_ms);
void azf__watch_close_in_child(azf__watch *w);
void azf__watch_free(azf__watch *w);

/* ---- output (runner.c) ---- */
void azf__set_color(int on);
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
/* Listens (host:port or the inherited socket) with the limits; 0 or -1 (printed). */
int azf__http_start(runner *r);
void azf__http_stop_accepting(runner *r);
/* After the loop: closes the connections still open. */
void azf__http_free(runner *r);
/* Stopping for a new version: idle connections that have served a request are closed;
 * the others may still send one request (it is answered, with Connection: close). */
void azf__http_handover(runner *r);
const char *azf__http_method_name(const azf__http_req *req);
/* Every reply goes out here: the status line, the headers and the output buffer already
 * set on req, with the body rules of RFC 9110 applied. reason: NULL for the standard one. */
void azf__http_send(runner *r, azf__http_req *req, int code, const char *reason);
void azf__http_reply_text(runner *r, azf__http_req *req, int code, const char *reason,
                          const char *text);
/* A reply streamed in pieces (runner_stream.c): the status line and req's headers now
 * (chunked), then azf__http_send_piece as often as needed and azf__http_send_end (or
 * _abort) once. Each piece moves all of piece into the reply; the end finishes it; the
 * abort cuts it short, so the client sees the reply incomplete (the connection is
 * reset). On a gone client they do nothing, except that the end or abort (or any
 * final reply) frees the request. */
void azf__http_send_start(runner *r, azf__http_req *req, int code, const char *reason);
void azf__http_send_piece(runner *r, azf__http_req *req, struct evbuffer *piece);
void azf__http_send_end(runner *r, azf__http_req *req);
void azf__http_send_abort(runner *r, azf__http_req *req);
/* 1 once the client has gone (the request stays valid until the reply is ended). */
int azf__http_client_gone(const azf__http_req *req);
/* Bytes of the reply not yet written to the client. */
size_t azf__http_unsent(const azf__http_req *req);
/* cb(ud) each time everything queued for the client has been written, and once when the
 * client goes away (flow control for a streamed reply). */
void azf__http_on_drained(azf__http_req *req, void (*cb)(void *), void *ud);
/* The request body as it arrives (HTTP streaming), instead of buffered whole: each piece
 * goes to on_piece (which drains what it takes from `piece`), then on_end once: complete
 * 1 when the body ended well, 0 when the client went away or the framing was bad. The
 * pieces already buffered are delivered at once. azf__http_body_pause(req, 1) stops
 * reading from the client (backpressure) until azf__http_body_pause(req, 0).
 * Once the reply has ended (azf__http_send*, _end, _abort) no callback comes any more;
 * the rest of a body not read by then is not read (the connection closes). */
typedef void (*azf__body_piece_fn)(void *ud, struct evbuffer *piece);
typedef void (*azf__body_end_fn)(void *ud, int complete);
void azf__http_body_stream(azf__http_req *req, azf__body_piece_fn on_piece, azf__body_end_fn on_end,
                           void *ud);
void azf__http_body_pause(azf__http_req *req, int paused);
/* The fd of req's client connection, or -1. */
int azf__http_fd(runner *r, azf__http_req *req);
/* Moves the request body into *out (a bytes value; NULL when the body is empty). */
int azf__http_take_body(azf__http_req *req, azf_value **out);
/* c answers req: if the client goes away first, azf__call_orphaned(c) is called. */
void azf__http_attach(runner *r, azf__http_req *req, call *c);

/* ---- routing (runner_route.c) ---- */
/* A request that passed the HTTP front's checks. */
void azf__route_request(runner *r, azf__http_req *req);
int azf__is_http(const azf_function *fn);
/* 1 when req (its head) goes to a function served through the app's own HTTP server
 * (HTTP streaming): it is then dispatched before its body arrives. */
int azf__route_streams(runner *r, azf__http_req *req);

/* ---- CORS (runner_cors.c) ---- */
/* Adds the CORS headers a request from an allowed origin gets; 1 when it was a
 * preflight, answered here. */
int azf__cors(runner *r, azf__http_req *req);

/* ---- invocations (runner_invoke.c) ---- */
/* Creates and starts an invocation with `input` (owned) for the trigger. NULL when it
 * could not start (the reason is printed). */
call *azf__start_call(runner *r, const azf_function *fn, azf_value *input, const char *reason,
                      azf__http_req *req);
/* The request as the host hands it to a worker: 0, AZF_E_PARSE (a query name or value
 * that is not UTF-8 once decoded: 400) or AZF_E_NOMEM. */
int azf__request_value(runner *r, azf__http_req *req, const char *path, const char *query,
                       azf_value_map *route, azf_value **out);
/* Well-formed UTF-8. */
int azf__utf8_valid(const char *s);
/* The client of c's request went away: the invocation finishes unanswered. */
void azf__call_orphaned(call *c);
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
/* The loop's wake event (on done_fd): finishes the completed invocations. */
void azf__on_wake(evutil_socket_t fd, short what, void *arg);
/* Frees the completed invocations left when the loop has ended. */
void azf__drop_done(runner *r);

/* ---- HTTP streaming (runner_stream.c) ---- */
/* Serves HTTP functions through the app's own server at uri (its HttpUri); 0 or -1. */
int azf__stream_set_uri(runner *r, const char *uri);
/* Starts the invocation and proxies req to the app's server (route: borrowed). */
void azf__stream_request(runner *r, azf__http_req *req, const azf_function *fn,
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
/* Before the app closes: the trigger threads are gone (they use its functions). */
void azf__runner_storage_join(runner *r);
/* After the loop: waits for the triggers, frees the step, stops the emulator. */
void azf__runner_storage_free(runner *r);

/* ---- signals and shutdown (runner_shutdown.c) ---- */
enum { AZF__EXIT_ABANDONED = 3 };
void azf__on_signal(evutil_socket_t sig, short what, void *arg);
/* Ends the process now (exit code 3), saying why and what was abandoned. */
void azf__abandon(runner *r, const char *why) __attribute__((noreturn));
/* What is left of the grace period since the first stop signal. */
long long azf__grace_left_ms(const runner *r);
/* Ends the loop once stopping and nothing is running or being written. */
void azf__maybe_exit(runner *r);

#endif
