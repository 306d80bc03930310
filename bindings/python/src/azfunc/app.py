"""Function apps in-process: open an app directory (v2 function_app.py or v1
function.json folders), list its functions, and invoke them the way the
worker does: inputs become the host's TypedData values, the worker's own
conversion (azure.functions converters, Context, Out) runs, and outputs and
the return value come back converted from TypedData.

    with azfunc.app.App('path/to/app') as app:
        r = app.invoke('hello', req={'method': 'GET', 'query': {'name': 'x'}})
        assert r.return_value.status_code == 200

One App is open at a time in a process (an app owns the interpreter's
sys.path and module names, as in the worker); close it before opening another.
"""
import dataclasses
import json
import os
import re
import sys
import urllib.parse
import uuid

from . import _azfunc
from ._azfunc import Error

_LEVELS = ('TRACE', 'DEBUG', 'INFO', 'WARNING', 'ERROR', 'CRITICAL')
_open_app = None


class AppError(Error):
    """Indexing or loading raised: str(e) is the worker's text
    ("<Type>: <message>"), e.stack_trace the frames."""

    def __str__(self):
        return self.args[0]

    @property
    def code(self):
        return self.args[1]

    @property
    def stack_trace(self):
        return self.args[2] if len(self.args) > 2 else ''


class FunctionError(Exception):
    """The function failed: str(e) is the Failure message the worker sends
    ("<Type>: <message>"), e.stack_trace its frames, e.result the Result."""

    def __init__(self, result):
        super().__init__(result.error)
        self.result = result
        self.stack_trace = result.stack_trace


@dataclasses.dataclass
class Function:
    name: str
    function_id: str
    trigger: str  # the trigger binding's name
    trigger_type: str
    route: str
    directory: str
    script_file: str
    entry_point: str
    bindings: list  # function.json binding objects (v2: as the worker indexes them)
    load_error: str = None
    metadata: dict = None  # v2: the worker's index entry (rawBindings, retry, properties)

    def binding(self, name):
        return next((b for b in self.bindings if b.get('name') == name), None)


@dataclasses.dataclass
class Result:
    status: str  # 'succeeded', 'failed' or 'cancelled'
    return_value: object
    outputs: dict  # output binding name -> value
    logs: list  # (level name, logger name, message), in order
    error: str = ''
    stack_trace: str = ''
    raw_return: object = None  # the TypedData-shaped (kind, payload) forms
    raw_outputs: dict = None

    @property
    def ok(self):
        return self.status == 'succeeded'


# ------------------------------------------------------------ Python -> value

def _body(value):
    if value is None:
        return None
    if isinstance(value, str):
        return ('string', value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ('bytes', bytes(value))
    return ('json', json.dumps(value))


def _pairs(mapping):
    return list((mapping or {}).items())


def _url(fn, route_params, query):
    """The URL the local runner would see: the route template filled in."""
    def fill(m):
        return str(route_params.get(m.group(1), ''))
    route = re.sub(r'\{(\w+)[^}]*\}', fill, (fn.route or fn.name) if fn else '')
    qs = urllib.parse.urlencode(query)
    return f'http://localhost/api/{route}' + (f'?{qs}' if qs else '')


def http_request(fn, req):
    """An HTTP trigger input: a dict {method, url, headers, query (or params),
    route_params, body} or an azure.functions.HttpRequest -> RpcHttp."""
    if hasattr(req, 'get_body') and hasattr(req, 'method'):
        req = {'method': req.method, 'url': req.url, 'headers': dict(req.headers),
               'query': dict(req.params), 'route_params': dict(req.route_params),
               'body': req.get_body()}
    if not isinstance(req, dict):
        raise TypeError('an HTTP input is a dict or an azure.functions.HttpRequest')
    query = req.get('query', req.get('params'))
    return ('http', {
        'method': req.get('method', 'GET'),
        'url': req.get('url') or _url(fn, req.get('route_params') or {}, query or {}),
        'headers': _pairs(req.get('headers')),
        'query': _pairs(query),
        'params': _pairs(req.get('route_params')),
        'body': _body(req.get('body')),
    })


def to_value(value, binding=None, fn=None):
    """A plain Python value -> the (kind, payload) TypedData form the host
    would send for it. A (kind, payload) tuple passes through unchanged."""
    if value is None or (isinstance(value, tuple) and len(value) == 2
                         and isinstance(value[0], str)):
        return value
    if binding is not None and binding.get('type') == 'httpTrigger':
        return http_request(fn, value)
    if isinstance(value, str):
        return ('string', value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ('bytes', bytes(value))
    if isinstance(value, bool):
        return ('json', json.dumps(value))
    if isinstance(value, int):
        return ('int', value)
    if isinstance(value, float):
        return ('double', value)
    if isinstance(value, (dict, list)):
        return ('json', json.dumps(value))
    if hasattr(value, 'get_body'):  # azure.functions objects (QueueMessage, ...)
        return ('bytes', value.get_body())
    if hasattr(value, 'get_json'):
        return ('json', json.dumps(value.get_json()))
    raise TypeError(f'cannot pass a {type(value).__name__} as a binding value')


# ------------------------------------------------------------ value -> Python

def _http_response(d):
    body = from_value(d['body'])
    if isinstance(body, str):
        body = body.encode()
    elif body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode()
    status = int(d['status_code'] or 200)
    try:
        import azure.functions as func
    except ImportError:
        return {'status_code': status, 'headers': dict(d['headers']), 'body': body,
                'cookies': d['cookies']}
    headers = dict(d['headers'])
    ctype = next((v for k, v in headers.items() if k.lower() == 'content-type'), None) or ''
    mimetype, _, params = ctype.partition(';')
    charset = params.strip()[8:] if params.strip().lower().startswith('charset=') else None
    return func.HttpResponse(body=body, status_code=status, headers=headers,
                             mimetype=mimetype.strip() or None, charset=charset or 'utf-8')


def from_value(value):
    """(kind, payload) -> Python: str, bytes, int, float, JSON as Python
    objects, collections as lists, HTTP responses as azure.functions.HttpResponse."""
    if value is None:
        return None
    kind, payload = value
    if kind == 'json':
        return json.loads(payload)
    if kind == 'http':
        return _http_response(payload)
    if kind.startswith('collection_'):
        return [from_value(v) for v in payload]
    return payload


# ------------------------------------------------------------------- the app

class App:
    """An opened function app. Arguments: the app directory, the v2 script
    name (default PYTHON_SCRIPT_FILE_NAME or function_app.py)."""

    def __init__(self, path, script_file_name=None):
        global _open_app
        self._rt = None
        self.path = os.path.abspath(path)
        if not os.path.isdir(self.path):
            raise FileNotFoundError(f'{path}: not a directory')
        if _open_app is not None:
            raise RuntimeError(f'an app is already open in this process ({_open_app.path}); '
                               'close it first')
        self._modules = set(sys.modules)
        self._sys_path = list(sys.path)
        self._rt = _azfunc.Runtime(_azfunc.__file__, script_file_name)
        _open_app = self
        try:
            self._open()
        except BaseException:
            self.close()
            raise

    def _open(self):
        try:
            indexed = self._rt.index(self.path)
        except Error as exc:
            raise AppError(*exc.args) from None
        load_errors = {}
        if indexed is None:  # v1: function.json folders
            self.version = 1
            self._rt.load_v1(self.path)
            for f in self._rt.functions():
                if f['load_error']:
                    continue
                meta = {'name': f['name'], 'directory': f['directory'],
                        'scriptFile': f['script_file'],
                        'bindings': [json.loads(b) for b in f['bindings']]}
                if f['entry_point']:
                    meta['entryPoint'] = f['entry_point']
                try:
                    self._rt.load(f['name'], json.dumps(meta))
                except Error as exc:
                    load_errors[f['name']] = exc.args[0]
        else:
            self.version = 2
        indexed = {m['name']: m for m in map(json.loads, indexed or [])}
        self.functions = {}
        for f in self._rt.functions():
            meta = indexed.get(f['name'])
            bindings = meta['bindings'] if meta else [json.loads(b) for b in f['bindings']]
            trig = next((b for b in bindings if b.get('name') == f['trigger']), {})
            self.functions[f['name']] = Function(
                name=f['name'], function_id=f['id'], trigger=f['trigger'],
                trigger_type=trig.get('type'), route=f['route'], directory=f['directory'],
                script_file=f['script_file'], entry_point=f['entry_point'], bindings=bindings,
                load_error=f['load_error'] or load_errors.get(f['name']), metadata=meta)

    def function(self, name):
        try:
            return self.functions[name]
        except KeyError:
            raise KeyError(f'no function named {name!r} in {self.path}') from None

    def invoke(self, name, inputs=None, *, trigger_metadata=None, invocation_id=None,
               timeout=60.0, **kwargs):
        """Runs function `name` with inputs given by binding name (a dict,
        keyword arguments, or both) and returns a Result, also when the
        function failed. trigger_metadata: name -> plain value."""
        fn = self.function(name)
        if fn.load_error:
            raise AppError(fn.load_error, -15)
        if self._rt is None:
            raise RuntimeError('the app is closed')
        given = dict(inputs or {}, **kwargs)
        values = {k: to_value(v, fn.binding(k), fn) for k, v in given.items()}
        meta = {k: to_value(v) for k, v in (trigger_metadata or {}).items()}
        r = self._rt.invoke(name, values, meta, invocation_id or str(uuid.uuid4()),
                            -1 if timeout is None else int(timeout * 1000))
        return Result(
            status=r['status'], return_value=from_value(r['return_value']),
            outputs={k: from_value(v) for k, v in r['outputs'].items()},
            logs=[(_LEVELS[lvl] if 0 <= lvl < len(_LEVELS) else str(lvl), cat, msg)
                  for lvl, cat, msg in r['logs']],
            error=r['error_message'], stack_trace=r['error_stack'],
            raw_return=r['return_value'], raw_outputs=r['outputs'])

    def call(self, name, inputs=None, **kwargs):
        """invoke(), then the return value; a failed function raises FunctionError."""
        result = self.invoke(name, inputs, **kwargs)
        if not result.ok:
            raise FunctionError(result)
        return result.return_value

    def close(self):
        """Drains running invocations and frees the runtime; the interpreter
        keeps running. The app's modules and sys.path entries are removed so
        that another app can be opened."""
        global _open_app
        if self._rt is not None:
            self._rt.close()
            self._rt = None
        for mod in set(sys.modules) - self._modules:
            file = getattr(sys.modules[mod], '__file__', None) or ''
            if mod == '__app__' or mod.startswith('__app__.') or \
                    os.path.abspath(file).startswith(self.path + os.sep):
                del sys.modules[mod]
        sys.path[:] = [p for p in sys.path if p in self._sys_path]
        if _open_app is self:
            _open_app = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        if getattr(self, '_rt', None) is not None:
            self.close()


def open_app(path, script_file_name=None):
    return App(path, script_file_name)
