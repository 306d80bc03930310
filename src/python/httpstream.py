"""libazfunc: HTTP streaming ("HTTP v2", host-protocol.md §9).

When the app imports an HTTP extension (azurefunctions-extensions-http-fastapi
registers its WebApp/WebServer with azurefunctions-extensions-base's tracker)
and init indexing is on, the worker serves HTTP itself: the extension's own
web server (uvicorn for FastAPI) runs on the adapter's asyncio loop with one
catch-all route, the host forwards every HTTP request there with an
`x-ms-invocation-id` header, and sends the InvocationRequest over gRPC with
only the route parameters. The two meet here, in whichever order they come.

Why the extension's server: the function gets the framework's own request and
returns the framework's own response; both bodies then stream through the
server's ASGI channel with its flow control, so neither side ever holds a
whole body, and the worker writes no HTTP code of its own.

The invocation completes when the HTTP response has been sent completely
(Success), or fails when the function raises, the request never arrives, or
the client goes away first. Its InvocationResponse carries no return value.
"""

import asyncio
import contextvars
import copy
import logging
import os
import socket
import sys

import _azfunc_telemetry as telemetry
from _azfunc_common import describe, env_true

HEADER = 'x-ms-invocation-id'
BASE_MODULE = 'azurefunctions.extensions.base'
# How long one side waits for the other (the host's forwarding activity
# timeout is 240 s); AZF_HTTP_PROXY_TIMEOUT_SECONDS overrides it.
DEFAULT_WAIT = 240.0
START_TIMEOUT = 30.0

_log = logging.getLogger('azure_functions_worker')
_loop = None
_uri = None
_server_task = None
_exchanges = {}   # invocation id -> _Exchange; touched on the loop thread only
streaming = set()  # ids of the functions served through the HTTP server


class HttpServerInitError(Exception):
    pass


class MissingHeaderError(Exception):
    pass


def _wait_seconds():
    raw = os.environ.get('AZF_HTTP_PROXY_TIMEOUT_SECONDS')
    try:
        value = float(raw) if raw else DEFAULT_WAIT
    except ValueError:
        value = DEFAULT_WAIT
    return value if value > 0 else DEFAULT_WAIT


def base():
    """azurefunctions.extensions.base when an HTTP extension was imported."""
    mod = sys.modules.get(BASE_MODULE)
    try:
        if mod is not None and mod.HttpV2FeatureChecker.http_v2_enabled():
            return mod
    except AttributeError:  # a base package without HTTP support
        pass
    return None


def init_indexing():
    """PYTHON_ENABLE_INIT_INDEXING; always on from Python 3.13 (§3.3, §9)."""
    return sys.version_info >= (3, 13) or \
        env_true('PYTHON_ENABLE_INIT_INDEXING')


def uri():
    return _uri


# ---------------------------------------------------------------- indexing

def accepts(binding_type, pytype, is_return=False):
    """The extension's type checks, which replace the converters' checks
    for HTTP functions when an HTTP extension is imported."""
    b = base()
    if b is None or not isinstance(pytype, type):
        return False
    if is_return:
        return binding_type == 'http' and \
            b.ResponseTrackerMeta.check_type(pytype)
    return binding_type == 'httpTrigger' and \
        b.RequestTrackerMeta.check_type(pytype)


def note_function(function_id, is_http):
    """Indexing saw an HTTP function while an HTTP extension is imported."""
    if is_http and base() is not None:
        streaming.add(function_id)


_warned = False


def is_streaming(function_id):
    global _warned
    if function_id not in streaming:
        return False
    if _uri is None and not _warned:
        _warned = True
        _log.warning('the app imports an HTTP streaming extension but the '
                     'worker serves no HTTP (PYTHON_ENABLE_INIT_INDEXING is '
                     'off): its HTTP functions get azure.functions requests')
    return _uri is not None


# ---------------------------------------------------------------- the server

class _Exchange:
    """One proxied request and one invocation, matched by invocation id."""

    def __init__(self, loop):
        self.request = loop.create_future()   # the framework's request
        self.invoked = loop.create_future()   # the InvocationRequest came
        self.result = loop.create_future()    # what the function returned
        self.done = loop.create_future()      # None, or why HTTP failed


def _exchange(inv_id):
    ex = _exchanges.get(inv_id)
    if ex is None:
        ex = _exchanges[inv_id] = _Exchange(_loop)
    return ex


def _settle(fut, value=None, exc=None):
    if not fut.done():
        if exc is not None:
            fut.set_exception(exc)
        else:
            fut.set_result(value)


def _make_route(request_type):
    async def azfunc_http_proxy(request: request_type):
        inv_id = request.headers.get(HEADER)
        if not inv_id:
            raise MissingHeaderError(
                f'the proxied HTTP request has no {HEADER} header')
        ex = _exchange(inv_id)
        if ex.request.done():
            raise RuntimeError(f'a second HTTP request for invocation '
                               f'{inv_id}')
        ex.request.set_result(request)
        try:
            await asyncio.wait_for(asyncio.shield(ex.invoked), _wait_seconds())
        except asyncio.TimeoutError:
            raise TimeoutError(f'no InvocationRequest {inv_id} came within '
                               f'{_wait_seconds():g} s') from None
        # A streamed body is produced in this task: its logs belong to the
        # invocation, which stays open until the body is sent.
        sys.modules['_azfunc_invocation']._current.set(inv_id)
        return await ex.result
    return azfunc_http_proxy


class _Outcome:
    """ASGI wrapper around the extension's app: tells the invocation how
    its HTTP exchange ended (sent completely, client gone, or an error)."""

    def __init__(self, app):
        self.app = app

    def get_app(self):  # what the extension's WebServer asks its web_app
        return self

    async def __call__(self, scope, receive, send):
        inv_id = None
        if scope.get('type') == 'http':
            for name, value in scope.get('headers') or ():
                if name == HEADER.encode():
                    inv_id = value.decode('latin-1')
                    break
        if not inv_id:
            return await self.app(scope, receive, send)
        ex = _exchange(inv_id)
        state = {'complete': False, 'gone': False}

        async def receive_():
            message = await receive()
            if message.get('type') == 'http.disconnect' \
                    and not state['complete']:
                state['gone'] = True
            return message

        async def send_(message):
            await send(message)
            if message.get('type') == 'http.response.body' \
                    and not message.get('more_body', False):
                state['complete'] = True

        error = None
        try:
            await self.app(scope, receive_, send_)
        except BaseException as exc:
            error = exc
            raise
        finally:
            if state['complete'] and not state['gone']:
                error = None
            elif error is None or state['gone']:
                error = ConnectionError(
                    'the HTTP client went away before the response was '
                    'complete')
            _settle(ex.done, error)
            if not ex.invoked.done():  # no invocation will collect it
                _exchanges.pop(inv_id, None)


def _free_port(host):
    family = socket.AF_INET6 if ':' in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


async def _serve_and_wait(server, host, port):
    """Starts the server task; returns once a connection is accepted."""
    global _server_task
    _server_task = asyncio.ensure_future(server.serve())
    deadline = _loop.time() + START_TIMEOUT
    while True:
        if _server_task.done():
            exc = _server_task.exception()
            raise HttpServerInitError(
                f'the HTTP server stopped at start: {exc!r}' if exc else
                f'the HTTP server did not start on {host}:{port}')
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            if _loop.time() > deadline:
                _server_task.cancel()
                raise HttpServerInitError(
                    f'the HTTP server did not listen on {host}:{port} within '
                    f'{START_TIMEOUT:g} s') from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        return


def start(loop, host):
    """Starts the HTTP server once (when an extension is imported); returns
    the capabilities to advertise ({} when streaming is off)."""
    global _loop, _uri
    if _uri is not None:
        return _capabilities()
    b = base()
    if b is None:
        return {}
    _loop = loop
    host = host or '127.0.0.1'
    try:
        ext = sys.modules[b.ModuleTrackerMeta.get_module()]
        web_app = ext.WebApp()
        web_app.route(_make_route(b.RequestTrackerMeta.get_request_type()))
        port = _free_port(host)
        server = ext.WebServer(host, port, _Outcome(web_app.get_app()))
        asyncio.run_coroutine_threadsafe(
            _serve_and_wait(server, host, port), loop).result(
                START_TIMEOUT + 5)
    except HttpServerInitError:
        raise
    except Exception as exc:
        raise HttpServerInitError(
            f'cannot start the HTTP streaming server on {host}: '
            f'{type(exc).__name__}: {exc}') from exc
    _uri = f'http://[{host}]:{port}' if ':' in host \
        else f'http://{host}:{port}'
    _log.info('HTTP streaming: serving on %s', _uri)
    return _capabilities()


def _capabilities():
    return {'HttpUri': _uri, 'RequiresRouteParameters': 'true'}


# ---------------------------------------------------------------- invocations

def _call_sync(inv, inv_id, func, args):
    inv.thread_local_storage.invocation_id = inv_id  # the log bridge's key
    try:
        return func(**args)
    finally:
        inv.thread_local_storage.invocation_id = None


def _in_executor(fn, *args):
    """fn(*args) on the loop's default executor, in this task's context."""
    return asyncio.get_running_loop().run_in_executor(
        None, contextvars.copy_context().run, fn, *args)


class StreamRunner:
    """The runner of an HTTP function of an app that imported an HTTP
    extension (invocation.runner gives it, always to run on the loop). With
    the server running, the trigger parameter gets the proxied request
    (route parameters copied in from the InvocationRequest), the function's
    result goes to the waiting HTTP handler, and the invocation ends once the
    response is sent, with its Out values but no return value. Without the
    server it is the plain runner. A sync function runs on the loop's
    default executor."""

    def __init__(self, inner):
        self.inner = inner
        self.fi = inner.fi
        self.needs_metadata = inner.needs_metadata
        self.outputs_only = copy.copy(inner)  # the response goes over HTTP
        self.outputs_only.encode_return = None

    async def run_async(self, cap, inv_id, inputs, metadata, trace, retry):
        inner, fi = self.inner, self.fi
        if _uri is None:
            if fi.is_async:
                return await inner.run_async(cap, inv_id, inputs, metadata,
                                             trace, retry)
            return await _in_executor(inner, cap, inv_id, inputs, metadata,
                                      trace, retry)
        inv = sys.modules['_azfunc_invocation']
        inv._current.set(inv_id)
        inv._running[inv_id] = cap
        ex = _exchange(inv_id)
        _settle(ex.invoked)
        try:
            args, _ = inner._prepare(inv_id, inputs, metadata, trace, retry)
            try:
                request = await asyncio.wait_for(asyncio.shield(ex.request),
                                                 _wait_seconds())
            except asyncio.TimeoutError:
                raise TimeoutError(
                    f'the HTTP request of invocation {inv_id} did not arrive '
                    f'within {_wait_seconds():g} s') from None
            param = fi.trigger_metadata['param_name']
            params = getattr(args.get(param), 'route_params', None) or {}
            base().RequestTrackerMeta.get_synchronizer().sync_route_params(
                request, dict(params))
            args[param] = request
            token = telemetry.attach(trace[0], trace[1])
            try:
                if fi.is_async:
                    result = await fi.func(**args)
                else:
                    result = await _in_executor(_call_sync, inv, inv_id,
                                                fi.func, args)
            except BaseException as exc:
                _settle(ex.result, exc=exc)
                raise
            finally:
                telemetry.detach(token)
            _settle(ex.result, result)
            error = await ex.done
            if error is not None:
                raise error
            return self.outputs_only._finish(args, None)
        except asyncio.CancelledError:
            if ex.request.done():  # a waiting handler answers 500
                _settle(ex.result,
                        exc=ConnectionAbortedError('invocation cancelled'))
            sys.stdout.flush()
            return inv.END_CANCEL, None, None
        except BaseException as exc:
            if ex.request.done():
                _settle(ex.result, exc=exc)
            sys.stdout.flush()
            return (inv.END_FAIL, *describe(exc))
        finally:
            _exchanges.pop(inv_id, None)
            inv._running.pop(inv_id, None)
