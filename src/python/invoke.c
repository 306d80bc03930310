/* Invocations in the Python adapter plugin: the handler side that never takes
 * the GIL (queue, in-flight list, drain) and the `_azfunc_native` module that
 * invocation.py uses to read inputs and complete invocations.
 *
 * Flow: invoke() queues a job and writes the eventfd; the asyncio loop thread
 * (invocation.py) wakes up, takes the jobs and schedules each one on the loop
 * (async def) or on the sync pool. The thread that runs a function converts
 * its inputs here (azf_value -> azure.functions Datum shapes, in C: the hot
 * path) and hands back outputs as plain tuples that become azf_values here.
 *
 * Exactly one completion: every completion, log and output call on an
 * invocation goes through its entry, whose lock and `done` flag serialise the
 * function's own completion against drain's. The GIL is never held while an
 * entry lock is taken or a starter callback runs. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include "python/plugin_internal.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define host azf__py_host_table
#define API (host->api)

enum { JOB_INVOKE = 0, JOB_CANCEL = 1 };

struct azf__py_entry {
    pthread_mutex_t lock; /* held across log, output and completion calls */
    int done;
    atomic_int refs; /* the in-flight list, each queued job, each capsule */
    azf_invocation *inv;
    azf__py_entry *prev, *next;   /* the in-flight list (rt->lock) */
    azf__py_entry *aprev, *anext; /* every live entry (all_lock) */
};

/* Every entry not yet freed: after an embedded interpreter is finalised, the
 * capsules of abandoned functions (a sync function that never returned) will
 * never be destroyed, so their entries are freed here. */
static pthread_mutex_t all_lock = PTHREAD_MUTEX_INITIALIZER;
static azf__py_entry *all_entries;

struct azf__py_job {
    int kind;
    azf__py_entry *entry; /* one reference */
    azf__py_job *next;
};

static void entry_free(azf__py_entry *e)
{
    pthread_mutex_destroy(&e->lock);
    host->free(e);
}

static void entry_unref(azf__py_entry *e)
{
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) {
        pthread_mutex_lock(&all_lock);
        if (e->aprev)
            e->aprev->anext = e->anext;
        else
            all_entries = e->anext;
        if (e->anext)
            e->anext->aprev = e->aprev;
        pthread_mutex_unlock(&all_lock);
        entry_free(e);
    }
}

/* Removes e from the in-flight list (once) and wakes a draining thread. */
static void entry_retire(azf__py_runtime *rt, azf__py_entry *e)
{
    int listed = 0;
    pthread_mutex_lock(&rt->lock);
    if (e->prev || rt->inflight == e) {
        listed = 1;
        if (e->prev)
            e->prev->next = e->next;
        else
            rt->inflight = e->next;
        if (e->next)
            e->next->prev = e->prev;
        e->prev = e->next = NULL;
        rt->inflight_count--;
        pthread_cond_broadcast(&rt->idle);
    }
    pthread_mutex_unlock(&rt->lock);
    if (listed)
        entry_unref(e);
}

enum { END_OK, END_FAIL, END_CANCEL };

/* Completes the invocation unless it already was. Values (owned) are set
 * first; on any failure they are freed. Returns 1 when this call completed it. */
static int entry_finish(azf__py_runtime *rt, azf__py_entry *e, int how, const char *msg,
                        const char *stack, size_t n_out, const char **names, azf_value **outs,
                        azf_value *ret)
{
    int completed = 0;
    pthread_mutex_lock(&e->lock);
    if (!e->done) {
        e->done = 1;
        completed = 1;
        char err[256] = "";
        for (size_t i = 0; how == END_OK && i < n_out; i++) {
            int rc = API->azf_invocation_set_output(e->inv, names[i], outs[i]);
            if (rc < 0) {
                snprintf(err, sizeof err, "TypeError: cannot set the output binding '%s': %s",
                         names[i],
                         rc == AZF_E_NOTFOUND      ? "no such out binding"
                         : rc == AZF_E_UNSUPPORTED ? "the host does not accept this kind"
                                                   : "invalid value");
                how = END_FAIL;
                msg = err;
                stack = "";
            } else {
                outs[i] = NULL;
            }
        }
        if (how == END_OK && ret) {
            if (API->azf_invocation_set_return(e->inv, ret) < 0) {
                snprintf(err, sizeof err,
                         "TypeError: cannot set the return value: the host does not accept it");
                how = END_FAIL;
                msg = err;
                stack = "";
            } else {
                ret = NULL;
            }
        }
        if (how == END_OK)
            API->azf_invocation_complete(e->inv);
        else if (how == END_CANCEL)
            API->azf_invocation_complete_cancelled(e->inv);
        else
            API->azf_invocation_fail(e->inv, msg, stack);
    }
    pthread_mutex_unlock(&e->lock);
    for (size_t i = 0; i < n_out; i++)
        API->azf_value_free(outs[i]);
    API->azf_value_free(ret);
    if (completed)
        entry_retire(rt, e);
    return completed;
}

/* ------------------------------------------------------------------ handler side */

static void wake(azf__py_runtime *rt)
{
    uint64_t one = 1;
    while (write(rt->efd, &one, sizeof one) < 0 && errno == EINTR)
        ;
}

/* Queues a job (takes one reference of e). Called with rt->lock held. */
static int push_job(azf__py_runtime *rt, int kind, azf__py_entry *e)
{
    azf__py_job *j = host->malloc(sizeof *j);
    if (!j)
        return AZF_E_NOMEM;
    j->kind = kind;
    j->entry = e;
    j->next = NULL;
    atomic_fetch_add(&e->refs, 1);
    if (rt->tail)
        rt->tail->next = j;
    else
        rt->head = j;
    rt->tail = j;
    return 0;
}

int azf__py_invoke(azf__py_runtime *rt, azf_invocation *inv)
{
    azf__py_entry *e = host->malloc(sizeof *e);
    if (!e)
        return AZF_E_NOMEM;
    memset(e, 0, sizeof *e);
    pthread_mutex_init(&e->lock, NULL);
    atomic_init(&e->refs, 1); /* the in-flight list */
    e->inv = inv;
    pthread_mutex_lock(&all_lock);
    e->anext = all_entries;
    if (e->anext)
        e->anext->aprev = e;
    all_entries = e;
    pthread_mutex_unlock(&all_lock);
    pthread_mutex_lock(&rt->lock);
    int rc = rt->draining ? AZF_E_STATE : push_job(rt, JOB_INVOKE, e);
    if (rc == 0) {
        e->next = rt->inflight;
        if (e->next)
            e->next->prev = e;
        rt->inflight = e;
        rt->inflight_count++;
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc < 0) {
        entry_unref(e);
        if (rc == AZF_E_STATE) {
            API->azf_invocation_fail(inv, "RuntimeError: the Python worker is shutting down", "");
            return 0;
        }
        return rc;
    }
    wake(rt);
    return 0;
}

void azf__py_cancel(azf__py_runtime *rt, azf_invocation *inv)
{
    pthread_mutex_lock(&rt->lock);
    for (azf__py_entry *e = rt->inflight; e; e = e->next)
        if (e->inv == inv) {
            push_job(rt, JOB_CANCEL, e);
            break;
        }
    pthread_mutex_unlock(&rt->lock);
    wake(rt);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int azf__py_drain(azf__py_runtime *rt, int timeout_ms)
{
    struct timespec deadline;
    if (timeout_ms >= 0)
        deadline_after(&deadline, timeout_ms);
    pthread_mutex_lock(&rt->lock);
    rt->draining = 1;
    while (rt->inflight) {
        if (timeout_ms < 0)
            pthread_cond_wait(&rt->idle, &rt->lock);
        else if (pthread_cond_timedwait(&rt->idle, &rt->lock, &deadline) == ETIMEDOUT)
            break;
    }
    /* Past the deadline: take the stragglers and ask async ones to stop. */
    size_t n = rt->inflight_count, k = 0;
    azf__py_entry **left = n ? host->malloc(n * sizeof *left) : NULL;
    for (azf__py_entry *e = rt->inflight; e && left; e = e->next) {
        atomic_fetch_add(&e->refs, 1);
        left[k++] = e;
        push_job(rt, JOB_CANCEL, e);
    }
    pthread_mutex_unlock(&rt->lock);
    if (k)
        wake(rt);
    int failed = 0;
    for (size_t i = 0; i < k; i++) {
        failed += entry_finish(rt, left[i], END_FAIL,
                               "TimeoutError: the invocation did not finish before the worker "
                               "shut down",
                               "", 0, NULL, NULL, NULL);
        entry_unref(left[i]);
    }
    host->free(left);
    return n && !left ? AZF_E_NOMEM : failed;
}

int azf__py_invoke_init(azf__py_runtime *rt)
{
    rt->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (rt->efd < 0)
        return AZF_E_IO;
    pthread_mutex_init(&rt->lock, NULL);
    pthread_cond_init(&rt->idle, NULL);
    return 0;
}

void azf__py_invoke_fini(azf__py_runtime *rt, int finalized)
{
    if (rt->efd < 0)
        return;
    /* Queued jobs of invocations that never ran: they were failed by drain. */
    for (azf__py_job *j = rt->head, *next; j; j = next) {
        next = j->next;
        entry_unref(j->entry);
        host->free(j);
    }
    rt->head = rt->tail = NULL;
    while (rt->inflight) {
        azf__py_entry *e = rt->inflight;
        entry_finish(rt, e, END_FAIL, "RuntimeError: the Python runtime was closed", "", 0, NULL,
                     NULL, NULL);
    }
    if (finalized) {
        pthread_mutex_lock(&all_lock);
        azf__py_entry *e = all_entries;
        all_entries = NULL;
        pthread_mutex_unlock(&all_lock);
        for (azf__py_entry *next; e; e = next) {
            next = e->anext;
            entry_free(e);
        }
    }
    close(rt->efd);
    rt->efd = -1;
    pthread_cond_destroy(&rt->idle);
    pthread_mutex_destroy(&rt->lock);
}

/* ------------------------------------------------------------------ the native module */

/* Per-process Python state of the module (one runtime at a time). */
static struct {
    azf__py_runtime *rt;
    PyObject *datum;     /* azure.functions.meta.Datum (set by adapter.setup) */
    PyObject *namespace; /* types.SimpleNamespace */
    PyObject *s[32];     /* interned strings, see enum below */
    void *module;        /* the current module: an older one freed later leaves N alone */
} N;

enum {
    S_STRING,
    S_JSON,
    S_BYTES,
    S_HTTP,
    S_INT,
    S_DOUBLE,
    S_COLL_BYTES,
    S_COLL_STRING,
    S_COLL_DOUBLE,
    S_COLL_SINT64,
    S_MBD,
    S_COLL_MBD,
    S_METHOD,
    S_URL,
    S_HEADERS,
    S_PARAMS,
    S_QUERY,
    S_BODY,
    S_VERSION,
    S_SOURCE,
    S_CONTENT_TYPE,
    S_CONTENT,
    S_DOUBLE_ATTR,
    S_SINT64_ATTR,
    S_MBD_ATTR,
    S_COUNT
};

static const char *const s_text[S_COUNT] = {
    "string",
    "json",
    "bytes",
    "http",
    "int",
    "double",
    "collection_bytes",
    "collection_string",
    "collection_double",
    "collection_sint64",
    "model_binding_data",
    "collection_model_binding_data",
    "method",
    "url",
    "headers",
    "params",
    "query",
    "body",
    "version",
    "source",
    "content_type",
    "content",
    "double",
    "sint64",
    "model_binding_data",
};

static const char *ENTRY_CAPSULE = "azfunc.invocation";

static azf__py_entry *entry_of(PyObject *cap)
{
    return PyCapsule_GetPointer(cap, ENTRY_CAPSULE);
}

static void capsule_free(PyObject *cap)
{
    entry_unref(PyCapsule_GetPointer(cap, ENTRY_CAPSULE));
}

static PyObject *text(const char *s, size_t n)
{
    return PyUnicode_DecodeUTF8(s ? s : "", s ? (Py_ssize_t)n : 0, "surrogateescape");
}

static PyObject *ctext(const char *s)
{
    return text(s, s ? strlen(s) : 0);
}

/* Datum(value, type); steals value. */
static PyObject *make_datum(PyObject *value, int type)
{
    if (!value)
        return NULL;
    PyObject *d = PyObject_CallFunctionObjArgs(N.datum, value, N.s[type], NULL);
    Py_DECREF(value);
    return d;
}

/* SimpleNamespace(**{attr: value}); steals value. */
static PyObject *make_ns1(int attr, PyObject *value)
{
    if (!value)
        return NULL;
    PyObject *kw = PyDict_New();
    PyObject *r = NULL;
    if (kw && PyDict_SetItem(kw, N.s[attr], value) == 0) {
        PyObject *empty = PyTuple_New(0);
        if (empty)
            r = PyObject_Call(N.namespace, empty, kw);
        Py_XDECREF(empty);
    }
    Py_XDECREF(kw);
    Py_DECREF(value);
    return r;
}

static PyObject *value_to_py(const azf_value *v);

static PyObject *http_map(const azf_value *v, int map)
{
    PyObject *d = PyDict_New();
    size_t n = API->azf_value_http_count(v, map);
    for (size_t i = 0; d && i < n; i++) {
        const char *val = NULL;
        const char *name = API->azf_value_http_entry(v, map, i, &val);
        PyObject *k = ctext(name);
        PyObject *dv = make_datum(ctext(val), S_STRING);
        if (!k || !dv || PyDict_SetItem(d, k, dv) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(dv);
    }
    return d;
}

static PyObject *http_to_py(const azf_value *v)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    const azf_value *b = API->azf_value_http_body(v);
    PyObject *body = API->azf_value_kind(b) ? value_to_py(b)
                                            : make_datum(PyBytes_FromStringAndSize("", 0), S_BYTES);
    PyObject *items[6] = {
        make_datum(ctext(API->azf_value_http_method(v)), S_STRING),
        make_datum(ctext(API->azf_value_http_url(v)), S_STRING),
        http_map(v, AZF_HTTP_HEADERS),
        http_map(v, AZF_HTTP_PARAMS),
        http_map(v, AZF_HTTP_QUERY),
        body,
    };
    static const int keys[6] = {S_METHOD, S_URL, S_HEADERS, S_PARAMS, S_QUERY, S_BODY};
    for (int i = 0; i < 6; i++) {
        if (d && (!items[i] || PyDict_SetItem(d, N.s[keys[i]], items[i]) < 0))
            Py_CLEAR(d);
        Py_XDECREF(items[i]);
    }
    return d ? make_datum(d, S_HTTP) : NULL;
}

static PyObject *mbd_to_ns(const azf_value *v)
{
    size_t len = 0;
    const void *content = API->azf_value_model_content(v, &len);
    PyObject *kw = Py_BuildValue("{OsOsOsOy#}", N.s[S_VERSION], API->azf_value_model_version(v),
                                 N.s[S_SOURCE], API->azf_value_model_source(v), N.s[S_CONTENT_TYPE],
                                 API->azf_value_model_content_type(v), N.s[S_CONTENT],
                                 content ? (const char *)content : "", (Py_ssize_t)len);
    if (!kw)
        return NULL;
    PyObject *empty = PyTuple_New(0);
    PyObject *r = empty ? PyObject_Call(N.namespace, empty, kw) : NULL;
    Py_XDECREF(empty);
    Py_DECREF(kw);
    return r;
}

/* The Datum (or None) the library expects for a value (azure-functions-library.md §2.2). */
static PyObject *value_to_py(const azf_value *v)
{
    size_t len = 0;
    const char *data;
    int kind = API->azf_value_kind(v);
    switch (kind) {
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
        data = API->azf_value_data(v, &len);
        return make_datum(text(data, len), kind == AZF_VALUE_STRING ? S_STRING : S_JSON);
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM:
        data = API->azf_value_data(v, &len);
        return make_datum(PyBytes_FromStringAndSize(data, (Py_ssize_t)len), S_BYTES);
    case AZF_VALUE_INT:
        return make_datum(PyLong_FromLongLong(API->azf_value_int(v)), S_INT);
    case AZF_VALUE_DOUBLE:
        return make_datum(PyFloat_FromDouble(API->azf_value_double(v)), S_DOUBLE);
    case AZF_VALUE_HTTP:
        return http_to_py(v);
    case AZF_VALUE_MODEL_BINDING_DATA:
        return make_datum(mbd_to_ns(v), S_MBD);
    case AZF_VALUE_COLLECTION_BYTES:
    case AZF_VALUE_COLLECTION_STRING:
    case AZF_VALUE_COLLECTION_DOUBLE:
    case AZF_VALUE_COLLECTION_SINT64:
    case AZF_VALUE_COLLECTION_MODEL_BINDING_DATA: {
        size_t n = API->azf_value_count(v);
        PyObject *list = PyList_New((Py_ssize_t)n);
        for (size_t i = 0; list && i < n; i++) {
            const azf_value *it = API->azf_value_item(v, i);
            PyObject *o;
            if (kind == AZF_VALUE_COLLECTION_BYTES) {
                data = API->azf_value_data(it, &len);
                o = PyBytes_FromStringAndSize(data, (Py_ssize_t)len);
            } else if (kind == AZF_VALUE_COLLECTION_STRING) {
                data = API->azf_value_data(it, &len);
                o = text(data, len);
            } else if (kind == AZF_VALUE_COLLECTION_DOUBLE) {
                o = PyFloat_FromDouble(API->azf_value_double(it));
            } else if (kind == AZF_VALUE_COLLECTION_SINT64) {
                o = PyLong_FromLongLong(API->azf_value_int(it));
            } else {
                o = mbd_to_ns(it);
            }
            if (!o)
                Py_CLEAR(list);
            else
                PyList_SET_ITEM(list, (Py_ssize_t)i, o);
        }
        static const int attr[] = {S_BYTES, S_STRING, S_DOUBLE_ATTR, S_SINT64_ATTR, 0, S_MBD_ATTR};
        static const int type[] = {S_COLL_BYTES, S_COLL_STRING, S_COLL_DOUBLE, S_COLL_SINT64, 0,
                                   S_COLL_MBD};
        int i = kind - AZF_VALUE_COLLECTION_BYTES;
        if (kind == AZF_VALUE_COLLECTION_MODEL_BINDING_DATA)
            i = 5;
        return make_datum(make_ns1(attr[i], list), type[i]);
    }
    default:
        Py_RETURN_NONE;
    }
}

static PyObject *map_to_py(const azf_value_map *m)
{
    PyObject *d = PyDict_New();
    size_t n = API->azf_value_map_count(m);
    for (size_t i = 0; d && i < n; i++) {
        const char *key;
        const azf_value *v = API->azf_value_map_at(m, i, &key);
        PyObject *k = ctext(key);
        PyObject *pv = value_to_py(v);
        if (!k || !pv || PyDict_SetItem(d, k, pv) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(pv);
    }
    return d;
}

static PyObject *attrs_to_py(const azf_value_map *m)
{
    PyObject *d = PyDict_New();
    size_t n = API->azf_value_map_count(m);
    for (size_t i = 0; d && i < n; i++) {
        const char *key;
        size_t len = 0;
        const azf_value *v = API->azf_value_map_at(m, i, &key);
        const char *s = API->azf_value_data(v, &len);
        PyObject *k = ctext(key), *pv = text(s, len);
        if (!k || !pv || PyDict_SetItem(d, k, pv) < 0)
            Py_CLEAR(d);
        Py_XDECREF(k);
        Py_XDECREF(pv);
    }
    return d;
}

/* take() -> [(kind, capsule), ...]: the queued jobs (loop thread). */
static PyObject *n_take(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    azf__py_runtime *rt = N.rt;
    uint64_t count;
    if (read(rt->efd, &count, sizeof count) < 0 && errno != EAGAIN)
        return PyErr_SetFromErrno(PyExc_OSError);
    pthread_mutex_lock(&rt->lock);
    azf__py_job *jobs = rt->head;
    rt->head = rt->tail = NULL;
    pthread_mutex_unlock(&rt->lock);
    PyObject *list = PyList_New(0);
    for (azf__py_job *j = jobs, *next; j; j = next) {
        next = j->next;
        PyObject *cap = PyCapsule_New(j->entry, ENTRY_CAPSULE, capsule_free);
        if (!cap)
            entry_unref(j->entry); /* the job's reference */
        PyObject *t = cap ? Py_BuildValue("(iN)", j->kind, cap) : NULL;
        if (!t || !list || PyList_Append(list, t) < 0)
            Py_CLEAR(list);
        Py_XDECREF(t);
        host->free(j);
    }
    return list;
}

/* Locks a running entry for reading its invocation with the GIL held (the
 * lock is taken without the GIL). Returns 0 when it is already complete: the
 * invocation may be gone. Entry-lock holders never wait for the GIL, except a
 * starter's callback that would (documented in python.h). */
static int entry_enter(azf__py_entry *e)
{
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&e->lock);
    Py_END_ALLOW_THREADS;
    if (!e->done)
        return 1;
    pthread_mutex_unlock(&e->lock);
    return 0;
}

/* ident(cap) -> (function_id, function_name, invocation_id), None when complete */
static PyObject *n_ident(PyObject *self, PyObject *cap)
{
    (void)self;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    if (!entry_enter(e))
        Py_RETURN_NONE;
    const azf_function *fn = API->azf_invocation_function(e->inv);
    PyObject *r =
        Py_BuildValue("(NNN)", ctext(API->azf_function_id(fn)), ctext(API->azf_function_name(fn)),
                      ctext(API->azf_invocation_id(e->inv)));
    pthread_mutex_unlock(&e->lock);
    return r;
}

/* inputs(cap) -> ({name: Datum|None}, {key: Datum|None}, (parent, state, {attrs}),
 *                 (retry_count, max_retry_count, message, stack) | None) */
static PyObject *n_inputs(PyObject *self, PyObject *cap)
{
    (void)self;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    if (!entry_enter(e)) {
        PyErr_SetString(PyExc_RuntimeError, "the invocation is already complete");
        return NULL;
    }
    azf_invocation *inv = e->inv;
    int32_t rc = 0, max = 0;
    const char *msg = NULL, *stack = NULL;
    PyObject *retry;
    if (API->azf_invocation_retry_context(inv, &rc, &max, &msg, &stack))
        retry = Py_BuildValue("(iiNN)", rc, max, ctext(msg), ctext(stack));
    else
        retry = Py_NewRef(Py_None);
    PyObject *r =
        Py_BuildValue("(NNNN)", map_to_py(API->azf_invocation_inputs(inv)),
                      map_to_py(API->azf_invocation_trigger_metadata(inv)),
                      Py_BuildValue("(NNN)", ctext(API->azf_invocation_trace_parent(inv)),
                                    ctext(API->azf_invocation_trace_state(inv)),
                                    attrs_to_py(API->azf_invocation_trace_attributes(inv))),
                      retry);
    pthread_mutex_unlock(&e->lock);
    return r;
}

static PyObject *n_cancel_requested(PyObject *self, PyObject *cap)
{
    (void)self;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    if (!entry_enter(e))
        Py_RETURN_TRUE; /* complete: nothing left to run */
    int r = API->azf_invocation_cancel_requested(e->inv);
    pthread_mutex_unlock(&e->lock);
    return PyBool_FromLong(r);
}

/* log(cap, level, category, message) -> True if delivered (the invocation runs). */
static PyObject *n_log(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *cap;
    int level;
    const char *category, *message;
    if (!PyArg_ParseTuple(args, "Oiss", &cap, &level, &category, &message))
        return NULL;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    int ok = 0;
    Py_BEGIN_ALLOW_THREADS;
    pthread_mutex_lock(&e->lock);
    if (!e->done)
        ok = API->azf_invocation_log(e->inv, level, category, message) == 0;
    pthread_mutex_unlock(&e->lock);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(ok);
}

/* syslog(level, category, message): the runtime's System log callback. */
static PyObject *n_syslog(PyObject *self, PyObject *args)
{
    (void)self;
    int level;
    const char *category, *message;
    if (!PyArg_ParseTuple(args, "iss", &level, &category, &message))
        return NULL;
    azf__py_runtime *rt = N.rt;
    if (rt && rt->log) {
        Py_BEGIN_ALLOW_THREADS;
        rt->log(level, category, message, rt->log_user_data);
        Py_END_ALLOW_THREADS;
    }
    Py_RETURN_NONE;
}

static int set_err(char *err, size_t n, const char *msg)
{
    snprintf(err, n, "%s", msg);
    return -1;
}

static int raw_to_value(PyObject *raw, azf_value **out, char *err, size_t errn);

/* ('http', status, [(name, value)], body_raw, [cookie tuples]) */
static int http_to_value(PyObject *raw, azf_value **out, char *err, size_t errn)
{
    PyObject *status, *headers, *body, *cookies;
    if (!PyArg_ParseTuple(raw, "sOOOO", &(const char *){0}, &status, &headers, &body, &cookies))
        return -1;
    azf_value *h = NULL;
    if (API->azf_value_new_http(&h) < 0)
        return set_err(err, errn, "MemoryError: out of memory");
    const char *st = PyUnicode_AsUTF8(status);
    if (!st || API->azf_value_http_set_status_code(h, st) < 0)
        goto bad;
    for (Py_ssize_t i = 0; i < PyList_Size(headers); i++) {
        const char *k, *v;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(headers, i), "ss", &k, &v) ||
            API->azf_value_http_set(h, AZF_HTTP_HEADERS, k, v) < 0)
            goto bad;
    }
    if (body != Py_None) {
        azf_value *bv = NULL;
        if (raw_to_value(body, &bv, err, errn) < 0)
            goto bad;
        if (bv && API->azf_value_http_set_body(h, bv) < 0) {
            API->azf_value_free(bv);
            goto bad;
        }
    }
    for (Py_ssize_t i = 0; i < PyList_Size(cookies); i++) {
        const char *name, *value, *domain, *path;
        PyObject *expires, *secure, *http_only, *max_age;
        int same_site;
        if (!PyArg_ParseTuple(PyList_GET_ITEM(cookies, i), "sszzOOOiO", &name, &value, &domain,
                              &path, &expires, &secure, &http_only, &same_site, &max_age))
            goto bad;
        azf_cookie *c = NULL;
        if (API->azf_cookie_new(&c, name, value) < 0)
            goto bad;
        int rc = API->azf_cookie_set_domain(c, domain) | API->azf_cookie_set_path(c, path) |
                 API->azf_cookie_set_same_site(c, same_site);
        if (expires != Py_None)
            rc |= API->azf_cookie_set_expires(c, PyLong_AsLongLong(expires), 0);
        if (secure != Py_None)
            rc |= API->azf_cookie_set_secure(c, PyObject_IsTrue(secure));
        if (http_only != Py_None)
            rc |= API->azf_cookie_set_http_only(c, PyObject_IsTrue(http_only));
        if (max_age != Py_None)
            rc |= API->azf_cookie_set_max_age(c, PyFloat_AsDouble(max_age));
        if (rc < 0 || PyErr_Occurred() || API->azf_value_http_add_cookie(h, c) < 0) {
            API->azf_cookie_free(c);
            goto bad;
        }
    }
    *out = h;
    return 0;
bad:
    API->azf_value_free(h);
    if (!err[0]) {
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyObject *s = v ? PyObject_Str(v) : NULL;
        snprintf(err, errn, "TypeError: invalid HTTP response: %s",
                 s && PyUnicode_Check(s) ? PyUnicode_AsUTF8(s) : "bad value");
        PyErr_Clear();
        Py_XDECREF(s);
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
    }
    return -1;
}

/* A raw output tuple from invocation.py -> azf_value (NULL for None). GIL held. */
static int raw_to_value(PyObject *raw, azf_value **out, char *err, size_t errn)
{
    *out = NULL;
    if (raw == Py_None)
        return 0;
    if (!PyTuple_Check(raw) || PyTuple_GET_SIZE(raw) < 2 ||
        !PyUnicode_Check(PyTuple_GET_ITEM(raw, 0)))
        return set_err(err, errn, "TypeError: the adapter produced a bad output");
    const char *type = PyUnicode_AsUTF8(PyTuple_GET_ITEM(raw, 0));
    PyObject *v = PyTuple_GET_ITEM(raw, 1);
    int rc = 0;
    if (!strcmp(type, "http"))
        return http_to_value(raw, out, err, errn);
    if (!strcmp(type, "string") || !strcmp(type, "json")) {
        Py_ssize_t n;
        const char *s = PyUnicode_Check(v) ? PyUnicode_AsUTF8AndSize(v, &n) : NULL;
        if (!s) {
            PyErr_Clear();
            return set_err(err, errn, "TypeError: a string output is not valid text");
        }
        rc = API->azf_value_new_data(out, type[0] == 's' ? AZF_VALUE_STRING : AZF_VALUE_JSON, s,
                                     (size_t)n);
    } else if (!strcmp(type, "bytes") && PyBytes_Check(v)) {
        rc = API->azf_value_new_data(out, AZF_VALUE_BYTES, PyBytes_AS_STRING(v),
                                     (size_t)PyBytes_GET_SIZE(v));
    } else if (!strcmp(type, "int") && PyLong_Check(v)) {
        long long i = PyLong_AsLongLong(v);
        if (i == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return set_err(err, errn, "OverflowError: int output does not fit in 64 bits");
        }
        rc = API->azf_value_new_int(out, i);
    } else if (!strcmp(type, "double") && PyFloat_Check(v)) {
        rc = API->azf_value_new_double(out, PyFloat_AS_DOUBLE(v));
    } else {
        return set_err(err, errn, "TypeError: the adapter produced a bad output");
    }
    return rc < 0 ? set_err(err, errn, "MemoryError: out of memory") : 0;
}

/* complete(cap, [(name, raw)], raw_return) -> True if this call completed it. */
static PyObject *n_complete(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *cap, *outputs, *ret_raw;
    if (!PyArg_ParseTuple(args, "OO!O", &cap, &PyList_Type, &outputs, &ret_raw))
        return NULL;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    Py_ssize_t n = PyList_GET_SIZE(outputs);
    const char **names = host->malloc(sizeof *names * (size_t)(n + 1));
    azf_value **vals = host->malloc(sizeof *vals * (size_t)(n + 1));
    azf_value *ret = NULL;
    char err[512] = "";
    Py_ssize_t k = 0;
    int bad = !names || !vals;
    if (bad)
        set_err(err, sizeof err, "MemoryError: out of memory");
    for (; !bad && k < n; k++) {
        PyObject *item = PyList_GET_ITEM(outputs, k);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 ||
            !(names[k] = PyUnicode_AsUTF8(PyTuple_GET_ITEM(item, 0)))) {
            PyErr_Clear();
            bad = 1;
            set_err(err, sizeof err, "TypeError: the adapter produced a bad output");
            break;
        }
        if (raw_to_value(PyTuple_GET_ITEM(item, 1), &vals[k], err, sizeof err) < 0) {
            bad = 1;
            break;
        }
    }
    if (!bad && raw_to_value(ret_raw, &ret, err, sizeof err) < 0)
        bad = 1;
    PyErr_Clear();
    int done;
    Py_BEGIN_ALLOW_THREADS;
    if (bad) {
        for (Py_ssize_t i = 0; i < k && vals; i++)
            API->azf_value_free(vals[i]);
        done = entry_finish(N.rt, e, END_FAIL, err, "", 0, NULL, NULL, NULL);
    } else {
        done = entry_finish(N.rt, e, END_OK, NULL, NULL, (size_t)n, names, vals, ret);
    }
    Py_END_ALLOW_THREADS;
    host->free(names);
    host->free(vals);
    return PyBool_FromLong(done);
}

static PyObject *n_fail(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *cap;
    const char *msg, *stack;
    if (!PyArg_ParseTuple(args, "Oss", &cap, &msg, &stack))
        return NULL;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    int done;
    Py_BEGIN_ALLOW_THREADS;
    done = entry_finish(N.rt, e, END_FAIL, msg, stack, 0, NULL, NULL, NULL);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(done);
}

static PyObject *n_cancelled(PyObject *self, PyObject *cap)
{
    (void)self;
    azf__py_entry *e = entry_of(cap);
    if (!e)
        return NULL;
    int done;
    Py_BEGIN_ALLOW_THREADS;
    done = entry_finish(N.rt, e, END_CANCEL, NULL, NULL, 0, NULL, NULL, NULL);
    Py_END_ALLOW_THREADS;
    return PyBool_FromLong(done);
}

/* setup(Datum, SimpleNamespace) -> the eventfd to watch. */
static PyObject *n_setup(PyObject *self, PyObject *args)
{
    (void)self;
    PyObject *datum, *ns;
    if (!PyArg_ParseTuple(args, "OO", &datum, &ns))
        return NULL;
    Py_XSETREF(N.datum, Py_NewRef(datum));
    Py_XSETREF(N.namespace, Py_NewRef(ns));
    return PyLong_FromLong(N.rt->efd);
}

static PyMethodDef methods[] = {
    {"setup", n_setup, METH_VARARGS, NULL},
    {"take", n_take, METH_NOARGS, NULL},
    {"ident", n_ident, METH_O, NULL},
    {"inputs", n_inputs, METH_O, NULL},
    {"cancel_requested", n_cancel_requested, METH_O, NULL},
    {"log", n_log, METH_VARARGS, NULL},
    {"syslog", n_syslog, METH_VARARGS, NULL},
    {"complete", n_complete, METH_VARARGS, NULL},
    {"fail", n_fail, METH_VARARGS, NULL},
    {"cancelled", n_cancelled, METH_O, NULL},
    {NULL, NULL, 0, NULL},
};

static void module_free(void *m)
{
    if (m != N.module) /* replaced by a later runtime's (extension mode) */
        return;
    N.module = NULL;
    Py_CLEAR(N.datum);
    Py_CLEAR(N.namespace);
    for (int i = 0; i < S_COUNT; i++)
        Py_CLEAR(N.s[i]);
    N.rt = NULL;
}

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "_azfunc_native", NULL, -1, methods, NULL, NULL, NULL, module_free,
};

PyObject *azf__py_native_module(azf__py_runtime *rt)
{
    N.rt = rt;
    for (int i = 0; i < S_COUNT; i++)
        if (!N.s[i] && !(N.s[i] = PyUnicode_InternFromString(s_text[i])))
            return NULL;
    return N.module = PyModule_Create(&module_def);
}
