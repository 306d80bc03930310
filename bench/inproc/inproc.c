/* In-process benchmark: invoking a Python function through the C API (registry +
 * Python handler: value in, invocation, completion, value out) against the floor
 * of calling the same Python function directly with a prebuilt argument inside
 * the same interpreter. Two C API paths: azf_invocation_run (the function runs
 * on the calling thread) and azf_invocation_start + a completion callback (the
 * function runs on a pool thread). One run, one process, ratios.
 *   azfunc-bench-inproc [-n N] [-r ROUNDS] [--json FILE]
 * Environment: VIRTUAL_ENV (a venv with azure-functions), as for azfunc-worker. */
#include "azfunc/azfunc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int completed;

static double now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static void on_complete(azf_invocation *inv, void *ud)
{
    (void)inv, (void)ud;
    pthread_mutex_lock(&mu);
    completed = 1;
    pthread_cond_signal(&cv);
    pthread_mutex_unlock(&mu);
}

/* One invocation, start to completion (run: azf_invocation_run). Returns its status. */
static int invoke(const azf_function *fn, long i, const char *xn, azf_invocation **keep, int run)
{
    char id[32];
    snprintf(id, sizeof id, "%ld", i);
    azf_invocation *inv;
    azf_value *req;
    if (azf_invocation_new(&inv, fn, id) || azf_value_new_http(&req) ||
        azf_value_http_set_method(req, "GET") ||
        azf_value_http_set_url(req, "http://localhost:7071/api/hello") ||
        (xn && azf_value_http_set(req, AZF_HTTP_HEADERS, "x-n", xn)) ||
        azf_invocation_set_input(inv, "req", req) ||
        (!run && azf_invocation_set_on_complete(inv, on_complete, NULL))) {
        fprintf(stderr, "azfunc-bench-inproc: cannot build an invocation\n");
        exit(2);
    }
    if (run) {
        azf_invocation_run(inv);
    } else {
        completed = 0;
        azf_invocation_start(inv);
        pthread_mutex_lock(&mu);
        while (!completed)
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    int st = azf_invocation_status(inv);
    if (keep)
        *keep = inv;
    else
        azf_invocation_free(inv);
    return st;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long n = 20000;
    int rounds = 5;
    const char *json = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc)
            n = atol(argv[++i]);
        else if (!strcmp(argv[i], "-r") && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--json") && i + 1 < argc)
            json = argv[++i];
        else {
            fprintf(stderr, "usage: azfunc-bench-inproc [-n N] [-r ROUNDS] [--json FILE]\n");
            return 2;
        }
    }
    azf_global_init();
    azf_python *py;
    azf_registry *reg;
    azf_python_index *idx;
    if (azf_python_new(&py, NULL) || azf_python_start(py) ||
        azf_python_index_app(py, AZF_INPROC_APP, &idx) || azf_registry_new(&reg) ||
        azf_python_register(py, reg, idx) < 0) {
        fprintf(stderr, "azfunc-bench-inproc: %s\n", azf_python_errmsg(py));
        return 2;
    }
    azf_python_index_free(idx);
    const azf_function *hello = azf_registry_find(reg, "hello"),
                       *floor_fn = azf_registry_find(reg, "floor");
    if (!hello || !floor_fn) {
        fprintf(stderr, "azfunc-bench-inproc: the app lacks hello/floor\n");
        return 2;
    }
    char xn[32];
    snprintf(xn, sizeof xn, "%ld", n);
    double *api = calloc((size_t)rounds, sizeof *api), *flo = calloc((size_t)rounds, sizeof *flo);
    double *pool = calloc((size_t)rounds, sizeof *pool);
    long failed = 0;
    for (long i = 0; i < 1000; i++) /* warm-up */
        failed += (invoke(hello, i, NULL, NULL, 1) != AZF_INVOCATION_SUCCEEDED) +
                  (invoke(hello, i, NULL, NULL, 0) != AZF_INVOCATION_SUCCEEDED);
    for (int r = 0; r < rounds; r++) {
        double t0 = now_ns();
        for (long i = 0; i < n; i++)
            failed += invoke(hello, i, NULL, NULL, 1) != AZF_INVOCATION_SUCCEEDED;
        api[r] = (now_ns() - t0) / (double)n;
        t0 = now_ns();
        for (long i = 0; i < n; i++)
            failed += invoke(hello, i, NULL, NULL, 0) != AZF_INVOCATION_SUCCEEDED;
        pool[r] = (now_ns() - t0) / (double)n;
        azf_invocation *inv = NULL;
        if (invoke(floor_fn, r, xn, &inv, 1) != AZF_INVOCATION_SUCCEEDED) {
            fprintf(stderr, "azfunc-bench-inproc: floor failed: %s\n",
                    azf_invocation_error_message(inv));
            return 2;
        }
        const azf_value *rv = azf_invocation_return_value(inv);
        const azf_value *body = rv ? azf_value_http_body(rv) : NULL;
        size_t len = 0;
        const void *p = body ? azf_value_data(body, &len) : NULL;
        char buf[64] = "0";
        if (p && len < sizeof buf)
            memcpy(buf, p, len), buf[len] = 0;
        flo[r] = atof(buf);
        azf_invocation_free(inv);
    }
    qsort(api, (size_t)rounds, sizeof *api, cmp);
    qsort(pool, (size_t)rounds, sizeof *pool, cmp);
    qsort(flo, (size_t)rounds, sizeof *flo, cmp);
    double a = api[rounds / 2], p = pool[rounds / 2], f = flo[rounds / 2];
    printf("in-process, %ld sync hello invocations x %d rounds (medians)\n", n, rounds);
    printf("  azf_invocation_run (caller's thread)  %10.0f ns/invocation  %8.2f x floor\n", a,
           f > 0 ? a / f : 0);
    printf("  azf_invocation_start (pool thread)    %10.0f ns/invocation  %8.2f x floor\n", p,
           f > 0 ? p / f : 0);
    printf("  floor (direct Python call)            %10.0f ns/call\n", f);
    printf("  failed invocations                    %10ld\n", failed);
    if (json) {
        FILE *o = fopen(json, "w");
        if (o) {
            fprintf(o,
                    "{\"n\": %ld, \"rounds\": %d, \"run_ns\": %.0f, \"start_ns\": %.0f, "
                    "\"floor_ns\": %.0f, \"ratio\": %.3f, \"start_ratio\": %.3f, "
                    "\"failed\": %ld}\n",
                    n, rounds, a, p, f, f > 0 ? a / f : 0, f > 0 ? p / f : 0, failed);
            fclose(o);
        }
    }
    azf_python_drain(py, 5000);
    azf_python_free(py);
    azf_registry_free(reg);
    free(api);
    free(pool);
    free(flo);
    azf_global_shutdown();
    return failed ? 1 : 0;
}
