"""libazfunc Python adapter, invocation part: the asyncio loop thread, the
sync pool, the logging bridge and running one invocation.

Compiled into the plugin as _azfunc_invocation (see common.py). Behaviour
follows shared/reference/host-protocol.md §6 and azure-functions-library.md
§2-3, §7, §10. The C side (_azfunc_native) queues invocations without the GIL
and wakes the asyncio loop thread through an eventfd; inputs arrive already
shaped as azure.functions Datums; outputs go back as plain tuples:
  ('string'|'json', str), ('bytes', bytes), ('int', int), ('double', float),
  ('http', status, [(name, value)], body_raw, [cookie tuples]) or None.
"""

import asyncio
import contextvars
import json
import logging
import os
import queue
import sys
import threading
import types

import _azfunc_common as common
import _azfunc_httpstream as httpstream
import _azfunc_indexing as indexing
import _azfunc_native as native
import _azfunc_telemetry as telemetry
from _azfunc_common import (GenericBinding, converter, deferred_registry,
                            describe, env_false, env_true, hooks, run_hooks)

SYSTEM_LOGGERS = ('azure_functions_worker', 'azure.functions')
SAME_SITE = {'lax': 1, 'strict': 2, 'none': 3}

_loop = None
_loop_thread = None
_pool = None
_tasks = {}             # id(capsule) -> asyncio.Task
_current = contextvars.ContextVar('azfunc_invocation', default=None)
thread_local_storage = threading.local()
_running = {}           # invocation id -> capsule (for logs)
_log_handler = None


def _log_level(levelno):
    """Python level -> RpcLog level (§6.4)."""
    if levelno >= logging.CRITICAL:
        return 5
    if levelno >= logging.ERROR:
        return 4
    if levelno >= logging.WARNING:
        return 3
    if levelno >= logging.INFO:
        return 2
    if levelno >= logging.DEBUG:
        return 1
    return 6


def current_invocation_id():
    """asyncio task (contextvar) first, then the thread's storage (§6.4)."""
    inv = _current.get()
    if inv is None:
        inv = getattr(thread_local_storage, 'invocation_id', None)
    return inv


class _Bridge(logging.Handler):
    """Root logger -> invocation logs (User) or the System log callback."""

    def emit(self, record):
        try:
            msg = self.format(record)
            level = _log_level(record.levelno)
            name = record.name
            if not name.startswith(SYSTEM_LOGGERS):
                cap = _running.get(current_invocation_id())
                if cap is not None and native.log(cap, level, name, msg):
                    return
            native.syslog(level, name, msg)
        except Exception:
            pass


class _Pool:
    """The sync pool: daemon threads created on demand up to max_workers
    (like ThreadPoolExecutor, but a function that never returns cannot keep
    the process from closing)."""

    def __init__(self, max_workers):
        self.max_workers = max_workers
        self._queue = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._idle = 0

    def submit(self, fn, *args):
        with self._lock:
            spawn = False
            if self._idle:
                self._idle -= 1
            elif self._threads < self.max_workers:
                self._threads += 1
                spawn = True
        self._queue.put((fn, args))
        if spawn:  # the item goes through the queue: Thread keeps its args
            threading.Thread(target=self._work, daemon=True,
                             name='azfunc-sync').start()

    def _work(self):
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args = item
            fn(*args)
            # An idle thread must not keep the last invocation alive.
            item = fn = args = None
            with self._lock:
                self._idle += 1

    def shutdown(self):
        with self._lock:
            n, self._threads, self._idle = self._threads, 0, 0
        for _ in range(n):
            self._queue.put(None)


def _thread_count():
    """PYTHON_THREADPOOL_THREAD_COUNT with the worker's default and checks."""
    default = min(32, (os.cpu_count() or 1) + 4)
    raw = os.environ.get('PYTHON_THREADPOOL_THREAD_COUNT')
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1:
        logging.getLogger('azure_functions_worker').warning(
            'PYTHON_THREADPOOL_THREAD_COUNT must be an integer >= 1, got '
            '%r; using the default %d', raw, default)
        return default
    return value


def apply_settings():
    """The settings read from the environment (plugin open, env reload)."""
    global _pool
    old = _pool
    _pool = _Pool(_thread_count())
    if old is not None:
        old.shutdown()
    logging.getLogger().setLevel(
        logging.DEBUG if env_true('PYTHON_ENABLE_DEBUG_LOGGING')
        else logging.INFO)
    common.extensions_enabled = env_true('PYTHON_ENABLE_WORKER_EXTENSIONS') or (
        sys.version_info[:2] == (3, 9)
        and not env_false('PYTHON_ENABLE_WORKER_EXTENSIONS'))


def _task_factory(loop, coro, **kwargs):
    # Child tasks copy the context, so they inherit _current; the attribute
    # is the official worker's marker, kept for code that reads it.
    task = asyncio.Task(coro, loop=loop, **kwargs)
    inv = _current.get()
    if inv is not None:
        task.__azure_function_invocation_id__ = inv
    return task


def start():
    """Starts the loop thread and the logging bridge (plugin open)."""
    global _loop, _loop_thread, _log_handler
    from azure.functions.meta import Datum
    fd = native.setup(Datum, types.SimpleNamespace)
    _log_handler = _Bridge()
    _log_handler.setFormatter(logging.Formatter('%(message)s'))
    logging.getLogger().addHandler(_log_handler)
    apply_settings()
    _loop = asyncio.new_event_loop()
    _loop.set_task_factory(_task_factory)
    _loop.add_reader(fd, _on_jobs)
    _loop_thread = threading.Thread(target=_run_loop, args=(_loop,),
                                    daemon=True, name='azfunc-asyncio')
    _loop_thread.start()


def _run_loop(loop):
    # asyncio lets SystemExit/KeyboardInterrupt from a stray user task escape
    # run_forever; the worker's loop must outlive them.
    while _loop is loop:
        try:
            loop.run_forever()
        except BaseException:
            logging.getLogger('azure_functions_worker').exception(
                'the asyncio loop stopped on an exception; restarting it')


def stop():
    """Stops the loop thread (plugin close). Running functions are abandoned."""
    global _loop
    if _loop is None:
        return
    loop, _loop = _loop, None
    _asgi_shutdown(loop)
    loop.call_soon_threadsafe(loop.stop)
    _loop_thread.join(5)
    if _pool is not None:
        _pool.shutdown()
    if _log_handler is not None:
        logging.getLogger().removeHandler(_log_handler)


def _asgi_shutdown(loop):
    """AsgiFunctionApp's lifespan task lives on our loop; its __del__ would
    asyncio.run the shutdown on a new loop at finalisation and hang, so the
    shutdown runs here, on the right loop, before the loop stops."""
    app = indexing.app_object
    if not getattr(app, 'startup_task_done', False):
        return
    try:
        asyncio.run_coroutine_threadsafe(
            app.middleware.notify_shutdown(), loop).result(5)
    except BaseException:
        logging.getLogger('azure_functions_worker').warning(
            'the ASGI application did not shut down cleanly', exc_info=True)
    app.startup_task_done = False


def _on_jobs():
    for kind, cap in native.take():
        if kind == 0:
            _dispatch(cap)
        else:
            ident = native.ident(cap)
            task = _tasks.get(ident[2]) if ident else None
            if task is not None:
                task.cancel()


class Out:
    def __init__(self):
        self.__value = None

    def set(self, val):
        self.__value = val

    def get(self):
        return self.__value


class TraceContext:
    def __init__(self, trace_parent, trace_state, attributes):
        self.trace_parent = trace_parent
        self.trace_state = trace_state
        self.attributes = attributes

    # The deprecated capitalised names the worker keeps.
    Traceparent = property(lambda self: self.trace_parent)
    Tracestate = property(lambda self: self.trace_state)
    Attributes = property(lambda self: self.attributes)


class RpcException:
    def __init__(self, source, stack_trace, message):
        self.source = source
        self.stack_trace = stack_trace
        self.message = message


class RetryContext:
    def __init__(self, retry_count, max_retry_count, rpc_exception):
        self.retry_count = retry_count
        self.max_retry_count = max_retry_count
        self.rpc_exception = rpc_exception

    exception = property(lambda self: self.rpc_exception)


class Context:
    def __init__(self, invocation_id, function_name, function_directory,
                 trace_context, retry_context):
        self._invocation_id = invocation_id
        self._function_name = function_name
        self._function_directory = function_directory
        self._trace_context = trace_context
        self._retry_context = retry_context

    invocation_id = property(lambda self: self._invocation_id)
    function_name = property(lambda self: self._function_name)
    function_directory = property(lambda self: self._function_directory)
    trace_context = property(lambda self: self._trace_context)
    retry_context = property(lambda self: self._retry_context)
    thread_local_storage = property(lambda self: thread_local_storage)


def _find_function(function_id, name):
    fi = indexing.functions.get(function_id)
    if fi is None:
        fi = next((f for f in indexing.functions.values() if f.name == name), None)
    if fi is None:
        raise RuntimeError(f'function {name} ({function_id}) is not loaded')
    return fi


def _dispatch(cap):
    ident = native.ident(cap)
    if ident is None:  # already completed (drained)
        return
    try:
        function_id, name, inv_id = ident
        fi = _find_function(function_id, name)
    except BaseException as exc:
        native.fail(cap, *describe(exc))
        return
    _running[inv_id] = cap
    streamed = httpstream.is_streaming(fi.function_id)
    if fi.is_async or streamed:
        task = _loop.create_task(httpstream.run(cap, fi, inv_id) if streamed
                                 else _run_async(cap, fi, inv_id))
        task.__azure_function_invocation_id__ = inv_id
        _tasks[inv_id] = task
        task.add_done_callback(lambda t: _task_done(t, cap, inv_id))
    else:
        _pool.submit(_run_sync, cap, fi, inv_id)


def _task_done(task, cap, inv_id):
    _tasks.pop(inv_id, None)
    _running.pop(inv_id, None)
    # A task cancelled before its first step never ran _run_async's handlers;
    # the native calls are no-ops when the invocation is already complete.
    if task.cancelled():
        native.cancelled(cap)


def _generic_decode(datum):
    if datum is None:
        return None
    if datum.type in ('string', 'bytes', 'json'):
        return datum.value
    raise ValueError(f'unexpected type of data received for the "generic" '
                     f'binding: {datum.type!r}')


def _decode(pt, datum, metadata):
    if pt.deferred:
        conv = deferred_registry().get(pt.binding_name)
        md = metadata if conv.has_trigger_support() else {}
        return conv.decode(datum, trigger_metadata=md, pytype=pt.pytype)
    conv = converter(pt.binding_name)
    if conv is GenericBinding:
        return _generic_decode(datum)
    md = metadata if conv.has_trigger_support() else {}
    try:
        return conv.decode(datum, trigger_metadata=md)
    except NotImplementedError:
        kind = datum.type if datum is not None else None
        raise TypeError(
            f'unable to decode incoming TypedData: unsupported combination '
            f'of TypedData field {kind!r} and expected binding type '
            f'{conv}') from None


def _generic_encode(obj):
    if isinstance(obj, str):
        return ('string', obj)
    if isinstance(obj, (bytes, bytearray)):
        return ('bytes', bytes(obj))
    if obj is None:
        return None
    if isinstance(obj, (dict, list)):
        return ('json', json.dumps(obj))
    if isinstance(obj, int):
        return ('int', int(obj))
    if isinstance(obj, float):
        return ('double', obj)
    raise NotImplementedError


def _cookie_expires(value):
    if not value:
        return None
    import email.utils
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError) as exc:
        raise TypeError(f'invalid cookie expires value {value!r}') from exc


def _cookies(cookies):
    out = []
    for cookie in cookies or ():
        for name, m in cookie.items():
            max_age = m['max-age']
            try:
                max_age = float(max_age) if max_age != '' else None
            except ValueError:
                raise TypeError(f'invalid cookie max-age value '
                                f'{max_age!r}') from None
            out.append((name, m.value, m['domain'] or None,
                        m['path'] or None, _cookie_expires(m['expires']),
                        True if m['secure'] else None,
                        True if m['httponly'] else None,
                        SAME_SITE.get(str(m['samesite']).lower(), 0),
                        max_age))
    return out


def _datum_raw(datum):
    """An encoded Datum -> the raw tuple C turns into an azf_value."""
    if datum is None or datum.type is None:
        return None
    t, v = datum.type, datum.value
    if t in ('string', 'json'):
        return (t, v if isinstance(v, str) else str(v))
    if t == 'bytes':
        return ('bytes', bytes(v))
    if t in ('int', 'bool'):
        return ('int', int(v))
    if t == 'double':
        return ('double', float(v))
    if t in ('dict', 'list'):
        return ('json', json.dumps(v))
    if t == 'http':
        headers = [(k, h.value) for k, h in (v.get('headers') or {}).items()]
        status = v.get('status_code')
        return ('http', str(status.value) if status is not None else '200',
                headers, _datum_raw(v.get('body')),
                _cookies(v.get('cookies')))
    raise NotImplementedError(f'unexpected Datum type: {t}')


def _encode(binding_name, pytype, obj):
    conv = converter(binding_name)
    try:
        if conv is GenericBinding:
            return _generic_encode(obj)
        return _datum_raw(conv.encode(obj, expected_type=pytype))
    except NotImplementedError:
        raise TypeError(
            f'unable to encode outgoing TypedData: unsupported type '
            f'"{binding_name}" for Python type '
            f'"{type(obj).__name__}"') from None


def _prepare(cap, fi, inv_id):
    inputs, metadata, trace, retry = native.inputs(cap)
    args = {}
    for name, datum in inputs.items():
        pt = fi.input_types.get(name)
        if pt is None:
            raise KeyError(name)
        args[name] = _decode(pt, datum, metadata)
    for name in fi.output_types:
        args[name] = Out()
    count, max_count, message, stack = retry or (0, 0, '', '')
    ctx = Context(inv_id, fi.name, fi.directory, TraceContext(*trace),
                  RetryContext(count, max_count,
                               RpcException('', stack, message)))
    if fi.requires_context:
        args['context'] = ctx
    return args, ctx


def _finish(cap, fi, args, result):
    if result is not None and fi.return_type is None:
        raise RuntimeError(f'function {fi.name!r} without a $return binding'
                           'returned a non-None value')
    outputs = []
    for name, pt in fi.output_types.items():
        val = args[name].get()
        if val is None:
            continue
        raw = _encode(pt.binding_name, pt.pytype, val)
        if raw is not None:
            outputs.append((name, raw))
    ret = None
    if fi.return_type is not None:
        ret = _encode(fi.return_type.binding_name, fi.return_type.pytype,
                      result)
    sys.stdout.flush()
    native.complete(cap, outputs, ret)


def _fail(cap, exc):
    sys.stdout.flush()
    native.fail(cap, *describe(exc))


def _run_sync(cap, fi, inv_id):
    if native.cancel_requested(cap):
        _running.pop(inv_id, None)
        native.cancelled(cap)
        return
    thread_local_storage.invocation_id = inv_id
    try:
        args, ctx = _prepare(cap, fi, inv_id)
        app_hooks, fn_hooks = hooks(fi)
        run_hooks(app_hooks, 'pre_invocation_app_level', ctx, args,
                   logger=True)
        run_hooks(fn_hooks, 'pre_invocation', ctx, args, logger=True)
        token = telemetry.attach(ctx.trace_context.trace_parent,
                                 ctx.trace_context.trace_state)
        try:
            result = fi.func(**args)
        finally:
            telemetry.detach(token)
        run_hooks(fn_hooks, 'post_invocation', ctx, args, result,
                   logger=True)
        run_hooks(app_hooks, 'post_invocation_app_level', ctx, args,
                   result, logger=True)
        _finish(cap, fi, args, result)
    except BaseException as exc:  # SystemExit fails the invocation only
        _fail(cap, exc)
    finally:
        thread_local_storage.invocation_id = None
        _running.pop(inv_id, None)


async def _run_async(cap, fi, inv_id):
    _current.set(inv_id)
    try:
        if native.cancel_requested(cap):
            native.cancelled(cap)
            return
        args, ctx = _prepare(cap, fi, inv_id)
        app_hooks, fn_hooks = hooks(fi)
        run_hooks(app_hooks, 'pre_invocation_app_level', ctx, args,
                   logger=True)
        run_hooks(fn_hooks, 'pre_invocation', ctx, args, logger=True)
        # The task's own context: nothing to detach when it ends.
        telemetry.attach(ctx.trace_context.trace_parent,
                         ctx.trace_context.trace_state)
        result = await fi.func(**args)
        run_hooks(fn_hooks, 'post_invocation', ctx, args, result,
                   logger=True)
        run_hooks(app_hooks, 'post_invocation_app_level', ctx, args,
                   result, logger=True)
        _finish(cap, fi, args, result)
    except asyncio.CancelledError:
        sys.stdout.flush()
        native.cancelled(cap)
    except BaseException as exc:
        _fail(cap, exc)
    finally:
        _running.pop(inv_id, None)
