"""libazfunc Python adapter, invocation part: the asyncio loop thread, the
logging bridge and running one invocation.

Compiled into the plugin as _azfunc_invocation (see common.py). Behaviour
follows shared/reference/host-protocol.md §6 and azure-functions-library.md
§2-3, §7, §10.

C owns the threads (invoke.c): a sync invocation is one call of its
function's runner on a C pool thread, `runner(cap, invocation_id, inputs,
metadata, trace, retry)`, with the inputs already shaped as azure.functions
Datums; an async one is started on the loop thread by `_on_jobs`. Either way
the outcome is one tuple, the call's return value (or native.finish's
argument for a task):
  (END_OK, [(name, raw)], raw_return) | (END_FAIL, message, stack)
  | (END_CANCEL, None, None)
where raw is None, (kind, value) for the data kinds, or
(KIND_HTTP, status, [(name, value)], raw_body, [cookie tuples]); kinds are
the AZF_VALUE_* integers of native.kinds(), the table the marshaller uses.
"""

import asyncio
import contextvars
import functools
import json
import logging
import os
import sys
import threading
import types
from http.cookies import SimpleCookie

import _azfunc_common as common
import _azfunc_httpstream as httpstream
import _azfunc_indexing as indexing
import _azfunc_native as native
import _azfunc_telemetry as telemetry
from _azfunc_common import (GenericBinding, converter, deferred_registry,
                            describe, env_false, env_true, hooks, run_hooks)

END_OK, END_FAIL, END_CANCEL = 0, 1, 2
KINDS = native.kinds()  # 'string' -> AZF_VALUE_STRING, ... (one C table)
KIND_HTTP = KINDS['http']
KIND_BYTES = KINDS['bytes']
# Datum types the library's encoders produce -> the kind they travel as.
_DATUM_KINDS = {'string': KINDS['string'], 'json': KINDS['json'],
                'bytes': KINDS['bytes'], 'int': KINDS['int'],
                'bool': KINDS['int'], 'double': KINDS['double'],
                'dict': KINDS['json'], 'list': KINDS['json']}

SYSTEM_LOGGERS = ('azure_functions_worker', 'azure.functions')
SAME_SITE = {'lax': 1, 'strict': 2, 'none': 3}

_loop = None
_loop_thread = None
_tasks = {}             # invocation id -> asyncio.Task
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
    """Root logger -> invocation logs (User) or the System log callback.
    Every user log line of every invocation comes through here, so the
    common case (the plain formatter, no exception or stack) takes the
    message straight from the record, and no lock is taken: emit keeps no
    state, and the C side serialises what it prints."""

    def handle(self, record):
        rv = self.filter(record) if self.filters else True
        if rv:
            self.emit(rv if isinstance(rv, logging.LogRecord) else record)
        return rv

    def emit(self, record):
        try:
            if (self.formatter is _PLAIN and not record.exc_info
                    and not record.exc_text and not record.stack_info):
                msg = record.message = record.getMessage()
            else:
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


_PLAIN = logging.Formatter('%(message)s')


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
    native.set_thread_count(_thread_count())
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
    """Starts the loop thread and the logging bridge (plugin open). Imports
    nothing of azure.functions: the app's paths are not known yet (indexing
    hands Datum over once they are)."""
    global _loop, _loop_thread, _log_handler
    fd = native.setup(None, types.SimpleNamespace)
    _log_handler = _Bridge()
    _log_handler.setFormatter(_PLAIN)
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
    """Stops the loop thread (plugin close; the C pool is stopped first).
    Running functions are abandoned."""
    global _loop
    if _loop is None:
        return
    loop, _loop = _loop, None
    _asgi_shutdown(loop)
    loop.call_soon_threadsafe(loop.stop)
    _loop_thread.join(5)
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
    """The loop thread's eventfd reader: starts async invocations and
    cancels their tasks."""
    for job in native.take():
        if len(job) == 1:
            task = _tasks.get(job[0])
            if task is not None:
                task.cancel()
        else:
            _start_task(*job)


def _start_task(runner, cap, inv_id, *inputs):
    task = _loop.create_task(runner.run_async(cap, inv_id, *inputs))
    task.__azure_function_invocation_id__ = inv_id
    _tasks[inv_id] = task
    task.add_done_callback(functools.partial(_task_done, cap, inv_id))


def _task_done(cap, inv_id, task):
    _tasks.pop(inv_id, None)
    _running.pop(inv_id, None)
    # A task cancelled before its first step never ran run_async's handlers.
    native.finish(cap, (END_CANCEL, None, None) if task.cancelled()
                  else task.result())


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


def runner(function_id, name=None):
    """(runner, is_async, needs_metadata, name) of a loaded function, built
    once when it loads: the C side keeps it for every invocation."""
    fi = indexing.functions.get(function_id)
    if fi is None and name is not None:
        fi = next((f for f in indexing.functions.values() if f.name == name),
                  None)
    if fi is None:
        raise RuntimeError(f'function {name} ({function_id}) is not loaded')
    r = _Runner(fi)
    if fi.function_id in httpstream.streaming:  # always on the loop (httpstream.py)
        return httpstream.StreamRunner(r), True, r.needs_metadata, fi.name
    return r, fi.is_async, r.needs_metadata, fi.name


class _Runner:
    """One loaded function: its converters, resolved at load."""

    def __init__(self, fi):
        self.fi = fi
        self.func = fi.func
        self.decoders = {name: _decoder(pt)
                         for name, pt in fi.input_types.items()}
        self.needs_metadata = any(d.uses_metadata
                                  for d in self.decoders.values())
        self.outputs = [(name, _encoder(pt.binding_name, pt.pytype))
                        for name, pt in fi.output_types.items()]
        rt = fi.return_type
        self.encode_return = (_encoder(rt.binding_name, rt.pytype)
                              if rt is not None else None)

    def _prepare(self, inv_id, inputs, metadata, trace, retry):
        fi = self.fi
        args = {}
        md = metadata if metadata is not None else {}
        for name, datum in inputs.items():
            decode = self.decoders.get(name)
            if decode is None:
                raise KeyError(name)
            args[name] = decode(datum, md)
        for name, _ in self.outputs:
            args[name] = Out()
        if not (fi.requires_context or common.extensions_enabled):
            return args, None  # nobody would see the Context
        count, max_count, message, stack = retry or (0, 0, '', '')
        ctx = Context(inv_id, fi.name, fi.directory, TraceContext(*trace),
                      RetryContext(count, max_count,
                                   RpcException('', stack, message)))
        if fi.requires_context:
            args['context'] = ctx
        return args, ctx

    def _finish(self, args, result):
        if result is not None and self.encode_return is None:
            # The official text, without the space it lacks.
            raise RuntimeError(f'function {self.fi.name!r} without a $return '
                               'bindingreturned a non-None value')
        outputs = []
        for name, encode in self.outputs:
            val = args[name].get()
            if val is None:
                continue
            raw = encode(val)
            if raw is not None:
                outputs.append((name, raw))
        ret = self.encode_return(result) if self.encode_return else None
        sys.stdout.flush()
        return END_OK, outputs, ret

    def __call__(self, cap, inv_id, inputs, metadata, trace, retry):
        """A sync invocation, on a C pool thread."""
        _running[inv_id] = cap
        thread_local_storage.invocation_id = inv_id
        token = telemetry.attach(trace[0], trace[1])
        try:
            args, ctx = self._prepare(inv_id, inputs, metadata, trace, retry)
            if not common.extensions_enabled:
                return self._finish(args, self.func(**args))
            app_hooks, fn_hooks = hooks(self.fi)
            run_hooks(app_hooks, 'pre_invocation_app_level', ctx, args,
                      logger=True)
            run_hooks(fn_hooks, 'pre_invocation', ctx, args, logger=True)
            result = self.func(**args)
            run_hooks(fn_hooks, 'post_invocation', ctx, args, result,
                      logger=True)
            run_hooks(app_hooks, 'post_invocation_app_level', ctx, args,
                      result, logger=True)
            return self._finish(args, result)
        except BaseException as exc:  # SystemExit fails the invocation only
            sys.stdout.flush()
            return (END_FAIL, *describe(exc))
        finally:
            telemetry.detach(token)
            thread_local_storage.invocation_id = None
            _running.pop(inv_id, None)

    async def run_async(self, cap, inv_id, inputs, metadata, trace, retry):
        """An async invocation, as a task on the loop thread."""
        _current.set(inv_id)
        _running[inv_id] = cap
        # The task's own context: nothing to detach when it ends.
        telemetry.attach(trace[0], trace[1])
        try:
            args, ctx = self._prepare(inv_id, inputs, metadata, trace, retry)
            app_hooks, fn_hooks = hooks(self.fi)
            run_hooks(app_hooks, 'pre_invocation_app_level', ctx, args,
                      logger=True)
            run_hooks(fn_hooks, 'pre_invocation', ctx, args, logger=True)
            result = await self.func(**args)
            run_hooks(fn_hooks, 'post_invocation', ctx, args, result,
                      logger=True)
            run_hooks(app_hooks, 'post_invocation_app_level', ctx, args,
                      result, logger=True)
            return self._finish(args, result)
        except asyncio.CancelledError:
            sys.stdout.flush()
            return END_CANCEL, None, None
        except BaseException as exc:
            sys.stdout.flush()
            return (END_FAIL, *describe(exc))
        finally:
            _running.pop(inv_id, None)


# ---------------------------------------------------------------- inputs

def _generic_decode(datum):
    if datum is None:
        return None
    if datum.type in ('string', 'bytes', 'json'):
        return datum.value
    raise ValueError(f'unexpected type of data received for the "generic" '
                     f'binding: {datum.type!r}')


def _decoder(pt):
    """decode(datum, trigger_metadata) for one input binding."""
    if pt.deferred:
        conv = deferred_registry().get(pt.binding_name)
        with_md = conv.has_trigger_support()

        def decode(datum, metadata):
            return conv.decode(datum, trigger_metadata=metadata if with_md
                               else {}, pytype=pt.pytype)
        decode.uses_metadata = with_md
        return decode
    conv = converter(pt.binding_name)
    if conv is GenericBinding:
        def decode(datum, metadata):
            return _generic_decode(datum)
        decode.uses_metadata = False
        return decode
    with_md = conv.has_trigger_support()

    def decode(datum, metadata):
        try:
            return conv.decode(datum, trigger_metadata=metadata if with_md
                               else {})
        except NotImplementedError:
            kind = datum.type if datum is not None else None
            raise TypeError(
                f'unable to decode incoming TypedData: unsupported '
                f'combination of TypedData field {kind!r} and expected '
                f'binding type {conv}') from None
    decode.uses_metadata = with_md
    return decode


# ---------------------------------------------------------------- outputs

def _generic_encode(obj):
    if isinstance(obj, str):
        return (KINDS['string'], obj)
    if isinstance(obj, (bytes, bytearray)):
        return (KINDS['bytes'], bytes(obj))
    if obj is None:
        return None
    if isinstance(obj, (dict, list)):
        return (KINDS['json'], json.dumps(obj))
    if isinstance(obj, int):
        return (KINDS['int'], int(obj))
    if isinstance(obj, float):
        return (KINDS['double'], obj)
    raise NotImplementedError


class ParserError(ValueError):
    """dateutil's ParserError, for environments without python-dateutil:
    the same name and text, so the failure reads as the official worker's."""

    def __str__(self):
        return self.args[0] % self.args[1:] if len(self.args) > 1 \
            else super().__str__()


def _parse_expires(value):
    """A cookie's Expires, as the official worker parses it (dateutil when
    the app's environment has it, else the stdlib's RFC 5322 parser)."""
    try:
        from dateutil import parser
    except ImportError:
        import email.utils
        try:
            return email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise ParserError('Unknown string format: %s', value) from None
    return parser.parse(value)


def _cookie_expires(value):
    if not value:
        return None
    try:
        return int(_parse_expires(value).timestamp())
    except OverflowError:
        logging.error(f'Can not parse value {value} of expires in the cookie '
                      'because the parsed date exceeds the largest valid C '
                      'integer on your system.')
        raise
    except ValueError:  # ParserError
        logging.error(f'Can not parse value {value} of expires in the cookie '
                      'due to invalid format.')
        raise


def _cookies(cookies):
    """Cookie tuples; attributes the app did not set go as present, empty or
    false values, as the official worker sends them."""
    out = []
    for cookie in cookies or ():
        for name, m in cookie.items():
            max_age = m['max-age']
            try:
                max_age = float(max_age) if max_age != '' else None
            except ValueError:
                raise TypeError(f'invalid cookie max-age value '
                                f'{max_age!r}') from None
            out.append((name, m.value, m['domain'] or '', m['path'] or '',
                        _cookie_expires(m['expires']), bool(m['secure']),
                        bool(m['httponly']),
                        SAME_SITE.get(str(m['samesite']).lower(), 0),
                        max_age))
    return out


def _datum_raw(datum):
    """An encoded Datum -> the raw tuple C turns into an azf_value."""
    if datum is None or datum.type is None:
        return None
    t, v = datum.type, datum.value
    kind = _DATUM_KINDS.get(t)
    if kind == KINDS['string'] or kind == KINDS['json']:
        if t in ('dict', 'list'):
            return (kind, json.dumps(v))
        return (kind, v if isinstance(v, str) else str(v))
    if kind == KINDS['bytes']:
        return (kind, bytes(v))
    if kind == KINDS['int']:
        return (kind, int(v))
    if kind == KINDS['double']:
        return (kind, float(v))
    if t == 'http':
        headers = [(k, h.value) for k, h in (v.get('headers') or {}).items()]
        status = v.get('status_code')
        return (KIND_HTTP, str(status.value) if status is not None else '200',
                headers, _datum_raw(v.get('body')),
                _cookies(v.get('cookies')))
    raise NotImplementedError(f'unexpected Datum type: {t}')


def _http_response_raw(obj):
    """The library's HttpResponseConverter.encode of a plain HttpResponse,
    straight to the raw tuple (the same headers, content type, cookies and
    body, without the Datums in between; the response object itself is left
    as the function returned it): the hot path of HTTP functions.
    tests/adapter checks it against the library's converter."""
    headers = obj.headers
    items = list(headers.items()) if headers else []
    names = {k.lower() for k, _ in items} if items else ()
    if 'content-type' not in names:
        mimetype = obj.mimetype
        items.append(('content-type', f'{mimetype}; charset={obj.charset}'
                      if mimetype.startswith('text/') else mimetype))
    cookies = []
    if 'set-cookie' in names:
        cookies = _cookies([SimpleCookie(v) for k, v in items
                            if k.lower() == 'set-cookie'])
        items = [(k, v) for k, v in items if k.lower() != 'set-cookie']
    if len(items) > 1:  # a repeated name keeps its last value
        items = list(dict(items).items())
    body = obj.get_body()
    return (KIND_HTTP, str(obj.status_code), items,
            (KIND_BYTES, bytes(body) if body is not None else b''), cookies)


def _encoder(binding_name, pytype):
    """encode(obj) -> raw, for one output binding (or the return value)."""
    conv = converter(binding_name)
    lib = sys.modules.get('azure.functions')
    fast = (lib.HttpResponse, _http_response_raw) \
        if lib is not None and conv.__name__ == 'HttpResponseConverter' \
        and conv.__module__ == 'azure.functions.http' else (None, None)

    def encode(obj):
        try:
            if type(obj) is fast[0]:
                return fast[1](obj)
            if conv is GenericBinding:
                return _generic_encode(obj)
            return _datum_raw(conv.encode(obj, expected_type=pytype))
        except NotImplementedError:
            # The official text names the library's converter class; the
            # generic fallback is named by its binding type.
            what = binding_name if conv is GenericBinding else conv
            raise TypeError(
                f'unable to encode outgoing TypedData: unsupported type '
                f'"{what}" for Python type "{type(obj).__name__}"') from None
    return encode


def _encode(binding_name, pytype, obj):
    return _encoder(binding_name, pytype)(obj)
