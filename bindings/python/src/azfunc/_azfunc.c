/* azfunc._azfunc: the C half of the Python binding.
 *
 * This module is also the Python adapter plugin: setup.py compiles it together
 * with src/python/plugin.c and invoke.c, so it exports azf__python_plugin_v4.
 * A Runtime starts the adapter in extension mode with this module's own file
 * as the plugin path: dlopen returns the module that is already loaded, the
 * adapter attaches to the running interpreter, and no second libpython is
 * ever loaded. The thin Python layer (codec.py, app.py) builds on the
 * primitives here; values cross as (kind, payload) tuples. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <azfunc/codec.h>
#include <azfunc/python.h>
#include <azfunc/registry.h>
#include <azfunc/value.h>

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef AZFUNC_PREFIX /* where libazfunc is installed (setup.py: pkg-config) */
#define AZFUNC_PREFIX "/usr/local"
#define AZFUNC_LIBDIR "/usr/local/lib"
#endif

static PyObject *Error; /* azfunc._azfunc.Error(message, code[, stack_trace]) */

static PyObject *raise(int code, const char *msg)
{
    PyObject *e = Py_BuildValue("(si)", msg && *msg ? msg : azf_strerror(code), code);
    if (e) {
        PyErr_SetObject(Error, e);
        Py_DECREF(e);
    }
    return NULL;
}

/* ------------------------------------------------------------------ codec */

static PyObject *c_decode(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    azf_message *m = NULL;
    azf_buf out = AZF_BUF_INIT;
    PyObject *res = NULL;
    int rc = azf_message_new(&m);
    if (rc == 0)
        rc = azf_message_decode(m, b.buf, (size_t)b.len);
    if (rc == 0)
        rc = azf_message_to_json(m, &out);
    if (rc == 0)
        res = PyUnicode_FromStringAndSize(out.ptr, (Py_ssize_t)out.size);
    else
        raise(rc, m ? azf_message_errmsg(m) : NULL);
    azf_buf_dispose(&out);
    azf_message_free(m);
    PyBuffer_Release(&b);
    return res;
}

static PyObject *c_encode(PyObject *self, PyObject *args)
{
    (void)self;
    const char *json;
    Py_ssize_t len;
    int frame = 0;
    if (!PyArg_ParseTuple(args, "s#|p", &json, &len, &frame))
        return NULL;
    azf_message *m = NULL;
    azf_buf out = AZF_BUF_INIT;
    PyObject *res = NULL;
    int rc = azf_message_new(&m);
    if (rc == 0)
        rc = azf_message_from_json(m, json, (size_t)len);
    if (rc == 0)
        rc = frame ? azf_message_encode_frame(m, &out) : azf_message_encode(m, &out);
    if (rc == 0)
        res = PyBytes_FromStringAndSize(out.ptr ? out.ptr : "", (Py_ssize_t)out.size);
    else
        raise(rc, m ? azf_message_errmsg(m) : NULL);
    azf_buf_dispose(&out);
    azf_message_free(m);
    return res;
}

/* split_frames(data) -> (messages, pending): the complete frames' payloads and
 * the number of bytes of an incomplete last frame. */
static PyObject *c_split_frames(PyObject *self, PyObject *arg)
{
    (void)self;
    Py_buffer b;
    if (PyObject_GetBuffer(arg, &b, PyBUF_SIMPLE) < 0)
        return NULL;
    azf_frame_reader *r = NULL;
    PyObject *list = PyList_New(0), *res = NULL;
    int rc = list ? azf_frame_reader_new(&r, 0) : AZF_E_NOMEM;
    const uint8_t *p = b.buf;
    size_t left = (size_t)b.len;
    while (rc == 0 && left > 0) {
        size_t used = 0;
        rc = azf_frame_reader_feed(r, p, left, &used);
        p += used;
        left -= used;
        if (rc == 1) {
            const uint8_t *msg;
            size_t n;
            azf_frame_reader_message(r, &msg, &n);
            PyObject *one = PyBytes_FromStringAndSize((const char *)msg, (Py_ssize_t)n);
            if (!one || PyList_Append(list, one) < 0) {
                Py_XDECREF(one);
                goto done;
            }
            Py_DECREF(one);
            rc = 0;
        }
    }
    if (rc < 0)
        raise(rc, r ? azf_frame_reader_errmsg(r) : NULL);
    else
        res = Py_BuildValue("(On)", list, (Py_ssize_t)azf_frame_reader_pending(r));
done:
    Py_XDECREF(list);
    azf_frame_reader_free(r);
    PyBuffer_Release(&b);
    return res;
}

/* ------------------------------------------------------------------ values */

static const struct {
    const char *name;
    int kind;
} kinds[] = {
    {"string", AZF_VALUE_STRING},
    {"json", AZF_VALUE_JSON},
    {"bytes", AZF_VALUE_BYTES},
    {"stream", AZF_VALUE_STREAM},
    {"http", AZF_VALUE_HTTP},
    {"int", AZF_VALUE_INT},
    {"double", AZF_VALUE_DOUBLE},
    {"collection_bytes", AZF_VALUE_COLLECTION_BYTES},
    {"collection_string", AZF_VALUE_COLLECTION_STRING},
    {"collection_double", AZF_VALUE_COLLECTION_DOUBLE},
    {"collection_sint64", AZF_VALUE_COLLECTION_SINT64},
};

static int kind_of(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0)
            return kinds[i].kind;
    return -1;
}

static int py_to_value(PyObject *o, azf_value **out);

static int bad(const char *what)
{
    PyErr_Format(PyExc_TypeError, "invalid value: %s", what);
    return -1;
}

/* The data of str or bytes (str as UTF-8). */
static int data_of(PyObject *o, const char **p, Py_ssize_t *n)
{
    if (PyUnicode_Check(o))
        return (*p = PyUnicode_AsUTF8AndSize(o, n)) ? 0 : -1;
    if (PyBytes_Check(o))
        return PyBytes_AsStringAndSize(o, (char **)p, n);
    return bad("expected str or bytes");
}

static int http_pairs(azf_value *v, int map, PyObject *pairs)
{
    PyObject *seq = PySequence_Fast(pairs, "HTTP maps are lists of (name, value) pairs");
    if (!seq)
        return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        const char *k, *val;
        PyObject *pair = PySequence_Fast_GET_ITEM(seq, i);
        if (!PyTuple_Check(pair) || !PyArg_ParseTuple(pair, "sz", &k, &val) ||
            azf_value_http_set(v, map, k, val) < 0) {
            Py_DECREF(seq);
            return PyErr_Occurred() ? -1 : bad("HTTP map entry");
        }
    }
    Py_DECREF(seq);
    return 0;
}

static int http_from_dict(PyObject *d, azf_value **out)
{
    if (!PyDict_Check(d))
        return bad("http payload must be a dict");
    azf_value *v = NULL;
    if (azf_value_new_http(&v) < 0) {
        PyErr_NoMemory();
        return -1;
    }
    static const char *maps[] = {"headers", "query", "params"};
    PyObject *o;
    const char *s;
    if ((o = PyDict_GetItemString(d, "method")) && o != Py_None && (s = PyUnicode_AsUTF8(o)))
        azf_value_http_set_method(v, s);
    if ((o = PyDict_GetItemString(d, "url")) && o != Py_None && (s = PyUnicode_AsUTF8(o)))
        azf_value_http_set_url(v, s);
    if ((o = PyDict_GetItemString(d, "status_code")) && o != Py_None && (s = PyUnicode_AsUTF8(o)))
        azf_value_http_set_status_code(v, s);
    if (PyErr_Occurred())
        goto fail;
    for (int m = 0; m < 3; m++)
        if ((o = PyDict_GetItemString(d, maps[m])) && http_pairs(v, m, o) < 0)
            goto fail;
    if ((o = PyDict_GetItemString(d, "body")) && o != Py_None) {
        azf_value *body = NULL;
        if (py_to_value(o, &body) < 0)
            goto fail;
        if (body && azf_value_http_set_body(v, body) < 0) {
            azf_value_free(body);
            bad("HTTP body");
            goto fail;
        }
    }
    *out = v;
    return 0;
fail:
    azf_value_free(v);
    return -1;
}

/* None -> null; (kind, payload) -> value. */
static int py_to_value(PyObject *o, azf_value **out)
{
    *out = NULL;
    if (o == Py_None)
        return azf_value_new_null(out) < 0 ? (PyErr_NoMemory(), -1) : 0;
    const char *name;
    PyObject *payload;
    if (!PyTuple_Check(o) || !PyArg_ParseTuple(o, "sO", &name, &payload))
        return PyErr_Occurred() ? -1 : bad("expected (kind, payload)");
    int kind = kind_of(name), rc = 0;
    const char *p;
    Py_ssize_t n;
    switch (kind) {
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM:
        if (data_of(payload, &p, &n) < 0)
            return -1;
        rc = azf_value_new_data(out, kind, p, (size_t)n);
        break;
    case AZF_VALUE_INT: {
        long long x = PyLong_AsLongLong(payload);
        if (x == -1 && PyErr_Occurred())
            return -1;
        rc = azf_value_new_int(out, x);
        break;
    }
    case AZF_VALUE_DOUBLE: {
        double x = PyFloat_AsDouble(payload);
        if (x == -1.0 && PyErr_Occurred())
            return -1;
        rc = azf_value_new_double(out, x);
        break;
    }
    case AZF_VALUE_HTTP:
        return http_from_dict(payload, out);
    case AZF_VALUE_COLLECTION_BYTES:
    case AZF_VALUE_COLLECTION_STRING:
    case AZF_VALUE_COLLECTION_DOUBLE:
    case AZF_VALUE_COLLECTION_SINT64: {
        static const char *item_kind[] = {"bytes", "string", "double", "int"};
        PyObject *seq = PySequence_Fast(payload, "a collection payload must be a sequence");
        if (!seq || azf_value_new_collection(out, kind) < 0) {
            Py_XDECREF(seq);
            return seq ? (PyErr_NoMemory(), -1) : -1;
        }
        for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
            azf_value *item = NULL;
            PyObject *t = Py_BuildValue("(sO)", item_kind[kind - AZF_VALUE_COLLECTION_BYTES],
                                        PySequence_Fast_GET_ITEM(seq, i));
            int r = t ? py_to_value(t, &item) : -1;
            Py_XDECREF(t);
            if (r == 0 && azf_value_collection_append(*out, item) < 0) {
                azf_value_free(item);
                r = bad("collection item");
            }
            if (r < 0) {
                Py_DECREF(seq);
                azf_value_free(*out);
                *out = NULL;
                return -1;
            }
        }
        Py_DECREF(seq);
        return 0;
    }
    default:
        PyErr_Format(PyExc_ValueError, "unknown value kind %R", PyTuple_GET_ITEM(o, 0));
        return -1;
    }
    return rc < 0 ? (PyErr_NoMemory(), -1) : 0;
}

static PyObject *value_to_py(const azf_value *v);

static PyObject *http_map_to_py(const azf_value *v, int map)
{
    size_t n = azf_value_http_count(v, map);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        const char *val = NULL;
        const char *k = azf_value_http_entry(v, map, i, &val);
        PyObject *t = Py_BuildValue("(sz)", k, val);
        if (!t) {
            Py_CLEAR(list);
            break;
        }
        PyList_SET_ITEM(list, (Py_ssize_t)i, t);
    }
    return list;
}

static PyObject *http_to_py(const azf_value *v)
{
    PyObject *cookies = PyList_New(0);
    for (size_t i = 0; cookies && i < azf_value_http_cookie_count(v); i++) {
        const azf_cookie *c = azf_value_http_cookie(v, i);
        PyObject *t = Py_BuildValue("(ss)", azf_cookie_name(c), azf_cookie_value(c));
        if (!t || PyList_Append(cookies, t) < 0)
            Py_CLEAR(cookies);
        Py_XDECREF(t);
    }
    const azf_value *body = azf_value_http_body(v);
    return Py_BuildValue("(s{szszszsNsNsNsNsN})", "http", "method", azf_value_http_method(v), "url",
                         azf_value_http_url(v), "status_code", azf_value_http_status_code(v),
                         "headers", http_map_to_py(v, AZF_HTTP_HEADERS), "query",
                         http_map_to_py(v, AZF_HTTP_QUERY), "params",
                         http_map_to_py(v, AZF_HTTP_PARAMS), "body",
                         body ? value_to_py(body) : Py_NewRef(Py_None), "cookies", cookies);
}

static PyObject *value_to_py(const azf_value *v)
{
    if (!v)
        Py_RETURN_NONE;
    int kind = azf_value_kind(v);
    const char *name = azf_value_kind_name(kind);
    size_t n = 0;
    const char *p;
    switch (kind) {
    case AZF_VALUE_NULL:
        Py_RETURN_NONE;
    case AZF_VALUE_STRING:
    case AZF_VALUE_JSON:
        p = azf_value_data(v, &n);
        return Py_BuildValue("(ss#)", name, p ? p : "", (Py_ssize_t)n);
    case AZF_VALUE_BYTES:
    case AZF_VALUE_STREAM:
        p = azf_value_data(v, &n);
        return Py_BuildValue("(sy#)", name, p ? p : "", (Py_ssize_t)n);
    case AZF_VALUE_INT:
        return Py_BuildValue("(sL)", name, (long long)azf_value_int(v));
    case AZF_VALUE_DOUBLE:
        return Py_BuildValue("(sd)", name, azf_value_double(v));
    case AZF_VALUE_HTTP:
        return http_to_py(v);
    default: {
        PyObject *items = PyList_New(0);
        for (size_t i = 0; items && i < azf_value_count(v); i++) {
            PyObject *it = value_to_py(azf_value_item(v, i));
            if (!it || PyList_Append(items, it) < 0)
                Py_CLEAR(items);
            Py_XDECREF(it);
        }
        return items ? Py_BuildValue("(sN)", name, items) : NULL;
    }
    }
}

/* ---------------------------------------------------------------- runtime */

typedef struct {
    PyObject_HEAD azf_python *py;
    azf_registry *reg;
} Runtime;

static int rt_init(Runtime *self, PyObject *args, PyObject *kw)
{
    (void)kw;
    const char *plugin, *script = NULL;
    if (!PyArg_ParseTuple(args, "s|z", &plugin, &script))
        return -1;
    if (self->py) {
        PyErr_SetString(PyExc_RuntimeError, "Runtime already initialised");
        return -1;
    }
    azf_python_opts *o = NULL;
    int rc = azf_python_opts_new(&o);
    if (rc == 0)
        rc = azf_python_opts_set_mode(o, AZF_PYTHON_EXTENSION);
    if (rc == 0)
        rc = azf_python_opts_set_plugin_path(o, plugin);
    if (rc == 0 && script)
        rc = azf_python_opts_set_script_file_name(o, script);
    if (rc == 0)
        rc = azf_python_new(&self->py, o);
    azf_python_opts_free(o);
    if (rc == 0)
        rc = azf_registry_new(&self->reg);
    if (rc < 0) {
        raise(rc, NULL);
        return -1;
    }
    /* The adapter takes the GIL itself (PyGILState_Ensure). */
    PyThreadState *ts = PyEval_SaveThread();
    rc = azf_python_start(self->py);
    PyEval_RestoreThread(ts);
    if (rc < 0) {
        raise(rc, azf_python_errmsg(self->py));
        azf_python_free(self->py);
        azf_registry_free(self->reg);
        self->py = NULL;
        self->reg = NULL;
        return -1;
    }
    return 0;
}

static int rt_ready(Runtime *self)
{
    if (self->py)
        return 0;
    PyErr_SetString(PyExc_RuntimeError, "the runtime is closed");
    return -1;
}

/* A Python error as Error(message, code, stack_trace). */
static PyObject *raise_python(Runtime *self, int rc)
{
    const azf_python_error *e = azf_python_last_error(self->py);
    PyObject *x =
        Py_BuildValue("(sis)", e ? azf_python_error_message(e) : azf_python_errmsg(self->py), rc,
                      e ? azf_python_error_stack_trace(e) : "");
    if (x) {
        PyErr_SetObject(Error, x);
        Py_DECREF(x);
    }
    return NULL;
}

/* index(app_dir) -> list of metadata JSON (v2 functions, registered) or None (v1). */
static PyObject *rt_index(Runtime *self, PyObject *args)
{
    const char *dir;
    if (rt_ready(self) < 0 || !PyArg_ParseTuple(args, "s", &dir))
        return NULL;
    azf_python_index *idx = NULL;
    int rc;
    PyThreadState *ts = PyEval_SaveThread();
    rc = azf_python_index_app(self->py, dir, &idx);
    PyEval_RestoreThread(ts);
    if (rc < 0)
        return raise_python(self, rc);
    PyObject *res = NULL;
    if (azf_python_index_use_default(idx)) {
        res = Py_NewRef(Py_None);
    } else if ((rc = azf_python_register(self->py, self->reg, idx)) < 0) {
        raise(rc, azf_python_errmsg(self->py));
    } else {
        size_t n = azf_python_index_count(idx);
        res = PyList_New((Py_ssize_t)n);
        for (size_t i = 0; res && i < n; i++) {
            PyObject *s = PyUnicode_FromString(azf_python_index_metadata(idx, i));
            if (!s)
                Py_CLEAR(res);
            else
                PyList_SET_ITEM(res, (Py_ssize_t)i, s);
        }
    }
    azf_python_index_free(idx);
    return res;
}

/* load_v1(app_dir): every function.json folder into the registry. */
static PyObject *rt_load_v1(Runtime *self, PyObject *args)
{
    const char *dir;
    if (rt_ready(self) < 0 || !PyArg_ParseTuple(args, "s", &dir))
        return NULL;
    int n = azf_registry_load_v1(self->reg, dir, azf_python_handler(self->py), self->py);
    if (n < 0)
        return raise(n, azf_registry_errmsg(self->reg));
    return PyLong_FromLong(n);
}

/* load(function_id, metadata_json): binds the id to the v1 function and loads it. */
static PyObject *rt_load(Runtime *self, PyObject *args)
{
    const char *name, *meta;
    if (rt_ready(self) < 0 || !PyArg_ParseTuple(args, "ss", &name, &meta))
        return NULL;
    int rc = azf_registry_bind_id(self->reg, name, name);
    if (rc < 0 && rc != AZF_E_STATE)
        return raise(rc, azf_registry_errmsg(self->reg));
    PyThreadState *ts = PyEval_SaveThread();
    rc = azf_python_load(self->py, name, meta);
    PyEval_RestoreThread(ts);
    if (rc < 0)
        return raise_python(self, rc);
    Py_RETURN_NONE;
}

static PyObject *function_to_py(const azf_function *fn)
{
    size_t nb = azf_function_binding_count(fn);
    PyObject *bindings = PyList_New((Py_ssize_t)nb);
    for (size_t i = 0; bindings && i < nb; i++) {
        PyObject *s = PyUnicode_FromString(azf_binding_json(azf_function_binding(fn, i)));
        if (!s)
            Py_CLEAR(bindings);
        else
            PyList_SET_ITEM(bindings, (Py_ssize_t)i, s);
    }
    const azf_binding *trig = azf_function_trigger(fn);
    return Py_BuildValue("{sssssssssssNszszsz}", "name", azf_function_name(fn), "id",
                         azf_function_id(fn), "directory", azf_function_directory(fn),
                         "script_file", azf_function_script_file(fn), "entry_point",
                         azf_function_entry_point(fn), "bindings", bindings, "trigger",
                         trig ? azf_binding_name(trig) : NULL, "route", azf_function_route(fn),
                         "load_error", azf_function_load_error(fn));
}

static PyObject *rt_functions(Runtime *self, PyObject *unused)
{
    (void)unused;
    if (rt_ready(self) < 0)
        return NULL;
    size_t n = azf_registry_count(self->reg);
    PyObject *list = PyList_New((Py_ssize_t)n);
    for (size_t i = 0; list && i < n; i++) {
        PyObject *d = function_to_py(azf_registry_at(self->reg, i));
        if (!d)
            Py_CLEAR(list);
        else
            PyList_SET_ITEM(list, (Py_ssize_t)i, d);
    }
    return list;
}

/* One invocation's rendezvous: shared by the caller and the callbacks. The
 * callbacks run on Python threads without the GIL, so they touch only this. */
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t done_cv;
    int done;
    int refs; /* caller + completion callback */
    struct log_rec *logs, **tail;
} waiter;

struct log_rec {
    struct log_rec *next;
    int level;
    char *category, *message;
};

static void waiter_unref(waiter *w)
{
    pthread_mutex_lock(&w->lock);
    int left = --w->refs;
    pthread_mutex_unlock(&w->lock);
    if (left)
        return;
    while (w->logs) {
        struct log_rec *r = w->logs;
        w->logs = r->next;
        free(r->category);
        free(r->message);
        free(r);
    }
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->done_cv);
    free(w);
}

static void on_complete(azf_invocation *inv, void *user_data)
{
    (void)inv;
    waiter *w = user_data;
    pthread_mutex_lock(&w->lock);
    w->done = 1;
    pthread_cond_broadcast(&w->done_cv);
    pthread_mutex_unlock(&w->lock);
    waiter_unref(w);
}

static void on_log(azf_invocation *inv, int level, const char *category, const char *message,
                   void *user_data)
{
    (void)inv;
    waiter *w = user_data;
    struct log_rec *r = calloc(1, sizeof *r);
    if (!r)
        return;
    r->level = level;
    r->category = strdup(category ? category : "");
    r->message = strdup(message ? message : "");
    pthread_mutex_lock(&w->lock);
    *w->tail = r;
    w->tail = &r->next;
    pthread_mutex_unlock(&w->lock);
}

/* Waits until done or the deadline; 1 when done. Called without the GIL. */
static int wait_done(waiter *w, long long timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&w->lock);
    while (!w->done)
        if (timeout_ms < 0 ? pthread_cond_wait(&w->done_cv, &w->lock)
                           : pthread_cond_timedwait(&w->done_cv, &w->lock, &ts) == ETIMEDOUT)
            break;
    int done = w->done;
    pthread_mutex_unlock(&w->lock);
    return done;
}

static PyObject *map_to_py(const azf_value_map *m)
{
    PyObject *d = PyDict_New();
    for (size_t i = 0; d && m && i < azf_value_map_count(m); i++) {
        const char *k;
        const azf_value *v = azf_value_map_at(m, i, &k);
        PyObject *x = value_to_py(v);
        if (!x || PyDict_SetItemString(d, k, x) < 0)
            Py_CLEAR(d);
        Py_XDECREF(x);
    }
    return d;
}

static const char *status_names[] = {"new", "running", "succeeded", "failed", "cancelled"};

/* invoke(name, inputs, trigger_metadata, invocation_id, timeout_ms) ->
 *   dict(status, error_message, error_stack, return_value, outputs, logs)
 * inputs and trigger_metadata: dicts of name -> value tuple. */
static PyObject *rt_invoke(Runtime *self, PyObject *args)
{
    const char *name, *inv_id;
    PyObject *inputs, *meta;
    long long timeout_ms;
    if (rt_ready(self) < 0 || !PyArg_ParseTuple(args, "sO!O!sL", &name, &PyDict_Type, &inputs,
                                                &PyDict_Type, &meta, &inv_id, &timeout_ms))
        return NULL;
    const azf_function *fn = azf_registry_find(self->reg, name);
    if (!fn)
        return raise(AZF_E_NOTFOUND, "no such function");
    azf_invocation *inv = NULL;
    int rc = azf_invocation_new(&inv, fn, inv_id);
    if (rc < 0)
        return raise(rc, NULL);
    PyObject *k, *o;
    Py_ssize_t pos = 0;
    azf_value_map *tm = NULL;
    while (PyDict_Next(inputs, &pos, &k, &o)) {
        azf_value *v = NULL;
        const char *key = PyUnicode_AsUTF8(k);
        if (!key || py_to_value(o, &v) < 0)
            goto fail;
        if ((rc = azf_invocation_set_input(inv, key, v)) < 0) {
            azf_value_free(v);
            PyErr_Format(PyExc_ValueError, "%s: no input binding named %R in %s", azf_strerror(rc),
                         k, name);
            goto fail;
        }
    }
    if (azf_value_map_new(&tm) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    for (pos = 0; PyDict_Next(meta, &pos, &k, &o);) {
        azf_value *v = NULL;
        const char *key = PyUnicode_AsUTF8(k);
        if (!key || py_to_value(o, &v) < 0)
            goto fail;
        if (azf_value_map_set(tm, key, v) < 0) {
            azf_value_free(v);
            PyErr_NoMemory();
            goto fail;
        }
    }
    azf_invocation_set_trigger_metadata(inv, tm);
    tm = NULL;

    waiter *w = calloc(1, sizeof *w);
    if (!w) {
        PyErr_NoMemory();
        goto fail;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->done_cv, NULL);
    w->refs = 2;
    w->tail = &w->logs;
    azf_invocation_set_on_complete(inv, on_complete, w);
    azf_invocation_set_on_log(inv, on_log, w);
    int done;
    PyThreadState *ts = PyEval_SaveThread();
    rc = azf_invocation_start(inv);
    done = rc == 0 && wait_done(w, timeout_ms);
    if (rc == 0 && !done) {
        azf_invocation_cancel(inv);
        done = wait_done(w, timeout_ms < 0 ? -1 : timeout_ms);
    }
    PyEval_RestoreThread(ts);
    if (rc < 0) {
        waiter_unref(w); /* never started: the callback will not run */
        waiter_unref(w);
        raise(rc, NULL);
        goto fail;
    }
    PyObject *res = NULL;
    if (!done) {
        raise(AZF_E_TIMEOUT, "the invocation did not complete in time");
    } else {
        PyObject *logs = PyList_New(0);
        for (struct log_rec *r = w->logs; logs && r; r = r->next) {
            PyObject *t = Py_BuildValue("(iss)", r->level, r->category, r->message);
            if (!t || PyList_Append(logs, t) < 0)
                Py_CLEAR(logs);
            Py_XDECREF(t);
        }
        int st = azf_invocation_status(inv);
        res = Py_BuildValue("{sssssssNsNsN}", "status", status_names[st], "error_message",
                            azf_invocation_error_message(inv), "error_stack",
                            azf_invocation_error_stack(inv), "return_value",
                            value_to_py(azf_invocation_return_value(inv)), "outputs",
                            map_to_py(azf_invocation_outputs(inv)), "logs", logs);
    }
    waiter_unref(w); /* a timed-out invocation keeps its own reference */
    azf_invocation_free(inv);
    return res;
fail:
    azf_value_map_free(tm);
    azf_invocation_free(inv);
    return NULL;
}

/* Drains running invocations, then frees the runtime (extension mode: the
 * interpreter keeps running). */
static void close_runtime(Runtime *self, int timeout_ms)
{
    if (!self->py)
        return;
    PyThreadState *ts = PyEval_SaveThread();
    azf_python_drain(self->py, timeout_ms);
    azf_registry_free(self->reg);
    azf_python_free(self->py);
    PyEval_RestoreThread(ts);
    self->py = NULL;
    self->reg = NULL;
}

/* close(timeout_ms=5000) */
static PyObject *rt_close(Runtime *self, PyObject *args)
{
    int timeout_ms = 5000;
    if (!PyArg_ParseTuple(args, "|i", &timeout_ms))
        return NULL;
    close_runtime(self, timeout_ms);
    Py_RETURN_NONE;
}

static void rt_dealloc(Runtime *self)
{
    close_runtime(self, 5000);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyMethodDef rt_methods[] = {
    {"index", (PyCFunction)rt_index, METH_VARARGS, NULL},
    {"load_v1", (PyCFunction)rt_load_v1, METH_VARARGS, NULL},
    {"load", (PyCFunction)rt_load, METH_VARARGS, NULL},
    {"functions", (PyCFunction)rt_functions, METH_NOARGS, NULL},
    {"invoke", (PyCFunction)rt_invoke, METH_VARARGS, NULL},
    {"close", (PyCFunction)rt_close, METH_VARARGS, NULL},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject RuntimeType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "azfunc._azfunc.Runtime",
    .tp_basicsize = sizeof(Runtime),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)rt_init,
    .tp_dealloc = (destructor)rt_dealloc,
    .tp_methods = rt_methods,
    .tp_doc = "Runtime(plugin_path, script_file_name=None): the adapter in extension mode.",
};

static PyMethodDef methods[] = {
    {"decode", c_decode, METH_O, "StreamingMessage bytes -> proto3 JSON text"},
    {"encode", c_encode, METH_VARARGS, "encode(json, frame=False) -> bytes"},
    {"split_frames", c_split_frames, METH_O, "bytes -> ([message bytes], pending)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef moddef = {
    PyModuleDef_HEAD_INIT, "azfunc._azfunc", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__azfunc(void)
{
    if (PyType_Ready(&RuntimeType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&moddef);
    if (!m)
        return NULL;
    Error = PyErr_NewException("azfunc._azfunc.Error", NULL, NULL);
    if (!Error || PyModule_AddObject(m, "Error", Error) < 0 ||
        PyModule_AddObject(m, "Runtime", Py_NewRef((PyObject *)&RuntimeType)) < 0 ||
        PyModule_AddStringConstant(m, "library_version", azf_version()) < 0 ||
        PyModule_AddStringConstant(m, "prefix", AZFUNC_PREFIX) < 0 ||
        PyModule_AddStringConstant(m, "libdir", AZFUNC_LIBDIR) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(Error);
    return m;
}
