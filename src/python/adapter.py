"""libazfunc Python adapter: app indexing (v2) and function loading (v1).

This module is compiled into libazfunc-python3.X.so and runs inside the
interpreter that the plugin owns (or attaches to). The C side calls `run()`
with one of the entry points below and gets `(0, result)` or
`(1, (message, stack_trace))` back, so no exception ever crosses into C.

Behaviour follows shared/reference/host-protocol.md §3.4, §3.5, §3.10, §4, §5
and azure-functions-library.md §2-4; error texts are the official worker's.
"""

import collections.abc
import importlib
import importlib.machinery
import importlib.util
import inspect
import json
import os
import pathlib
import re
import sys
import time
import traceback
import typing
import uuid

# The file name the plugin compiles this source under; its frames are
# internal and are left out of user-facing stack traces.
ADAPTER_FILE = '<azfunc-adapter>'

APP_PACKAGE = '__app__'
DEFAULT_SCRIPT_FILE = '__init__.py'
DEFAULT_ENTRY_POINT = 'main'
V2_SCRIPT_SETTING = 'PYTHON_SCRIPT_FILE_NAME'
V2_SCRIPT_DEFAULT = 'function_app.py'
V2_SCRIPT_NAME = re.compile(r'^[a-zA-Z0-9_][a-zA-Z0-9_\-]*\.py$')
MODULE_NOT_FOUND_URL = 'https://aka.ms/functions-modulenotfound'

# BindingInfo.Direction and BindingInfo.DataType numbers (FunctionRpc).
IN, OUT, INOUT = 0, 1, 2
DIRECTIONS = {'in': IN, 'out': OUT, 'inout': INOUT}
DATA_TYPES = {'undefined': 0, 'string': 1, 'binary': 2, 'stream': 3}
DATA_TYPE_NAMES = {v: k for k, v in DATA_TYPES.items()}


class FunctionLoadError(RuntimeError):
    def __init__(self, function_name, msg):
        super().__init__(f'cannot load the {function_name} function: {msg}')


class InvalidFileNameError(Exception):
    def __init__(self, file_name):
        super().__init__(f'Invalid file name: {file_name}')


class ParamTypeInfo(typing.NamedTuple):
    binding_name: str          # the binding type, or 'generic'
    pytype: typing.Any         # the annotation (unwrapped from Out), or None
    deferred: bool = False


class FunctionInfo(typing.NamedTuple):
    """What a later invocation needs (host-protocol.md §5.3 "Registry entry")."""
    func: typing.Callable
    name: str
    directory: str
    function_id: str
    requires_context: bool
    is_async: bool
    has_return: bool
    is_http_func: bool
    deferred_bindings_enabled: bool
    input_types: typing.Mapping[str, ParamTypeInfo]
    output_types: typing.Mapping[str, ParamTypeInfo]
    return_type: typing.Optional[ParamTypeInfo]
    trigger_metadata: typing.Optional[dict]


class Binding(typing.NamedTuple):
    """A v1 binding, shaped like the library's v2 binding objects."""
    name: str
    type: str
    direction: int
    data_type: int


# Per-interpreter state: one app per runtime.
functions = {}          # function_id -> FunctionInfo
_app_root = None
_index = None           # ('ok', results) or ('error', exception) once indexed
_app_object = None      # the v2 FunctionRegister


# ---------------------------------------------------------------- errors

def describe(exc):
    """(message, stack_trace) in the worker's RpcException shape (§3.10)."""
    try:
        message = f'{type(exc).__name__}: {exc}'
    except Exception:
        message = ('Unhandled exception in function. '
                   'Could not serialize original exception message.')
    try:
        hidden = {ADAPTER_FILE}
        if isinstance(exc, ModuleNotFoundError):
            hidden |= {'<frozen importlib._bootstrap>',
                       '<frozen importlib._bootstrap_external>'}
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename not in hidden]
        stack = ''.join(traceback.StackSummary.from_list(frames).format())
    except Exception:
        stack = ''
    return message, stack


def run(entry, *args):
    try:
        return 0, entry(*args)
    except BaseException as exc:  # user code may raise SystemExit too
        return 1, describe(exc)


def _with_import_hint(exc):
    """The ImportError suffix pointing at requirements.txt (§3.10)."""
    hint = ('Cannot find module. Please check the requirements.txt file for '
            'the missing module. For more info, please refer the '
            f'troubleshooting guide: {MODULE_NOT_FOUND_URL}. '
            f'Current sys.path: {sys.path}')
    old = getattr(exc, 'msg', None) or str(exc) or ''
    text = (old.rstrip('.') + '. ' + hint).rstrip()
    try:
        new = type(exc)(text)
    except Exception:
        new = ImportError(text)
    return new.with_traceback(exc.__traceback__)


# ---------------------------------------------------------------- sys.path

_front = None           # embedded: how many sys.path entries precede the stdlib


def _app_packages(app_root):
    """Where the official worker looks for an app's packages (.python_packages)."""
    lib = os.path.join(app_root, '.python_packages', 'lib')
    return [os.path.join(lib, 'site-packages'),
            os.path.join(lib, 'python%d.%d' % sys.version_info[:2],
                         'site-packages')]


def set_up_paths(pythonpath, app_dir, venv, bundled):
    """Embedded mode: sys.path in the official worker's order.

    PYTHONPATH, the app's .python_packages, the standard library, the venv's
    site-packages (with its .pth files), libazfunc's bundled azure-functions
    (the app's own copy wins), and later the app root, appended when the app
    is indexed or loaded. Returns sys.executable."""
    import site
    global _front
    stdlib = list(sys.path)
    front = []
    packages = _app_packages(os.path.abspath(app_dir)) if app_dir else []
    for p in list(pythonpath) + packages:
        p = os.path.abspath(p)
        if p not in front:
            front.append(p)
    sys.path[:] = front + [p for p in stdlib if p not in front]
    _front = len(front)
    if venv:
        site.addsitedir(os.path.join(venv, 'lib', 'python%d.%d' %
                                     sys.version_info[:2], 'site-packages'))
    if bundled:
        site.addsitedir(bundled)
    return sys.executable or ''


def _use_app_root(app_root):
    """Puts the app's packages before the stdlib and appends the app root,
    once, before anything of the app (or azure.functions) is imported."""
    global _app_root, _front
    app_root = os.path.normpath(os.path.abspath(app_root))
    if _app_root is None:
        at = _front if _front is not None else 0
        for p in _app_packages(app_root):
            if p not in sys.path:
                sys.path.insert(at, p)
                at += 1
        if _front is not None:
            _front = at
        if app_root not in sys.path:
            sys.path.append(app_root)
        sys.path_importer_cache.clear()
        _app_root = app_root
    elif _app_root != app_root:
        raise RuntimeError(f'this Python runtime already serves the app in '
                           f'{_app_root}, not {app_root}')
    _bind_library()
    return app_root


def _app_package(app_root):
    """The synthetic namespace package __app__ that v1 modules live in."""
    pkg = sys.modules.get(APP_PACKAGE)
    if pkg is None:
        spec = importlib.machinery.ModuleSpec(APP_PACKAGE, None,
                                              is_package=True)
        spec.submodule_search_locations = []
        pkg = importlib.util.module_from_spec(spec)
        sys.modules[APP_PACKAGE] = pkg
    if app_root not in pkg.__path__:
        pkg.__path__.append(app_root)


# ---------------------------------------------------------------- converters

def _library():
    lib = sys.modules.get('azure.functions')
    if lib is None:
        import azure.functions as lib
    return lib


class GenericBinding:
    """The worker-side fallback converter (azure-functions-library.md §2.4)."""

    @classmethod
    def has_trigger_support(cls):
        return False

    @classmethod
    def check_input_type_annotation(cls, pytype):
        return issubclass(pytype, (str, bytes))

    @classmethod
    def check_output_type_annotation(cls, pytype):
        return issubclass(pytype, (str, bytes, bytearray))

    @classmethod
    def has_implicit_output(cls, binding_type):
        return binding_type != 'durableClient'


_NO_DEFERRED = object()
_deferred_cache = None


def deferred_registry():
    """azurefunctions-extensions-base's registry (SDK types), or None."""
    global _deferred_cache
    if _deferred_cache is None:
        try:
            from azurefunctions.extensions import base
            _deferred_cache = base.get_binding_registry()
        except ImportError:
            _deferred_cache = _NO_DEFERRED
    return None if _deferred_cache is _NO_DEFERRED else _deferred_cache


def converter(binding_type):
    return _library().get_binding_registry().get(binding_type) or GenericBinding


def has_implicit_output(binding_type):
    conv = converter(binding_type)
    if conv is GenericBinding:
        return GenericBinding.has_implicit_output(binding_type)
    check = getattr(conv, 'has_implicit_output', None)
    return bool(check()) if check is not None else False


# ---------------------------------------------------------------- signatures

def _is_generic(tp):
    """typing_inspect.is_generic_type: generic classes and aliases, but not
    Union, Tuple, ClassVar or Callable."""
    if isinstance(tp, type):
        return issubclass(tp, typing.Generic)
    aliases = (typing._GenericAlias, typing._SpecialGenericAlias)
    return isinstance(tp, aliases) and tp.__origin__ not in (
        typing.Union, tuple, typing.ClassVar, collections.abc.Callable)


def _is_out(anno):
    """True for azure.functions.Out (or any class named Out) and Out[T]."""
    origin = typing.get_origin(anno) if _is_generic(anno) else None
    cls = anno if origin is None else origin
    return isinstance(cls, type) and cls.__name__ == 'Out'


def analyse(func, name, function_id, directory, bindings):
    """Validates a function against its bindings (host-protocol.md §5.3) and
    records it. `bindings` have .name, .type, .direction and .data_type."""
    params = dict(inspect.signature(func).parameters)
    hints = typing.get_type_hints(func)

    explicit_return = implicit_return = False
    return_binding_type = None
    bound = {}
    for b in bindings:
        if b.direction == INOUT:
            raise FunctionLoadError(name, '"inout" bindings are not supported')
        if b.name == '$return' and b.direction != OUT:
            raise FunctionLoadError(
                name, '"$return" binding must have direction set to "out"')
        if b.name == '$return':
            if not explicit_return:
                return_binding_type = b.type
            explicit_return = True
            continue
        if has_implicit_output(b.type):
            implicit_return = True
            if not explicit_return:
                return_binding_type = b.type
        bound[b.name] = b

    requires_context = 'context' in params and 'context' not in bound
    if requires_context:
        del params['context']
        if 'context' in hints:
            anno = hints['context']
            if not isinstance(anno, type) or anno.__name__ != 'Context':
                raise FunctionLoadError(
                    name, 'the "context" parameter is expected to be of type '
                    f'azure.functions.Context, got {anno!r}')

    extra = set(params) - set(bound)
    if extra:
        raise FunctionLoadError(
            name, 'the following parameters are declared in Python but not '
            f'in function.json: {extra!r}')
    missing = set(bound) - set(params)
    if missing:
        raise FunctionLoadError(
            name, 'the following parameters are declared in function.json '
            f'but not in Python: {missing!r}')

    inputs, outputs = {}, {}
    for pname in params:
        b = bound[pname]
        has_anno = pname in hints
        anno = hints.get(pname)
        is_out = has_anno and _is_out(anno)
        binding_out = b.direction == OUT

        pytype = anno
        if is_out:
            args = typing.get_args(anno)
            if len(args) != 1:
                raise FunctionLoadError(
                    name, f'binding {pname} has invalid Out annotation '
                    f'{anno!r}')
            pytype = args[0]
        if has_anno and not isinstance(pytype, type) \
                and not _is_generic(pytype):
            raise FunctionLoadError(
                name, f'binding {pname} has invalid non-type annotation '
                f'{anno!r}')
        if binding_out and has_anno and not is_out:
            raise FunctionLoadError(
                name, f'binding {pname} is declared to have the "out" '
                'direction, but its annotation in Python is not a subclass '
                'of azure.functions.Out')
        if not binding_out and is_out:
            raise FunctionLoadError(
                name, f'binding {pname} is declared to have the "in" '
                'direction in function.json, but its annotation is '
                'azure.functions.Out in Python')

        effective = b.type
        dreg = deferred_registry() if has_anno and not is_out else None
        if dreg is not None and dreg.check_supported_type(pytype):
            # An SDK type (azure-functions-library.md §8): the base
            # package's converter decodes model_binding_data.
            conv = dreg.get(b.type)
            if conv is None or not conv.check_input_type_annotation(pytype):
                raise FunctionLoadError(
                    name, f'type of {pname} binding in function.json '
                    f'"{b.type}" does not match its Python annotation '
                    f'"{getattr(pytype, "__name__", pytype)}"')
            inputs[pname] = ParamTypeInfo(b.type, pytype, True)
            continue
        if has_anno and pytype in (str, bytes) \
                and not has_implicit_output(b.type):
            effective = 'generic'
        if has_anno:
            conv = converter(effective)
            ok = (conv.check_output_type_annotation(pytype) if is_out
                  else conv.check_input_type_annotation(pytype))
            if not ok:
                # Like the worker, an unset v2 data_type (None) counts as set.
                if b.data_type is not DATA_TYPES['undefined']:
                    raise FunctionLoadError(
                        name, f'{pname!r} binding type "{b.type}" and '
                        f'dataType "{b.data_type}" in function.json do not '
                        'match the corresponding function parameter\'s '
                        f'Python type annotation "{pytype.__name__}"')
                raise FunctionLoadError(
                    name, f'type of {pname} binding in function.json '
                    f'"{b.type}" does not match its Python annotation '
                    f'"{pytype.__name__}"')
        info = ParamTypeInfo(effective, pytype)
        (outputs if binding_out else inputs)[pname] = info

    return_pytype = None
    if explicit_return and 'return' in hints:
        ranno = hints['return']
        if _is_generic(ranno) and _is_out(ranno):
            raise FunctionLoadError(
                name, 'return annotation should not be azure.functions.Out')
        if not isinstance(ranno, type):
            raise FunctionLoadError(
                name, f'has invalid non-type return annotation {ranno!r}')
        if not converter(return_binding_type).check_output_type_annotation(
                ranno):
            raise FunctionLoadError(
                name, f'Python return annotation "{ranno.__name__}" does not '
                f'match binding type "{return_binding_type}"')
        return_pytype = ranno
    elif implicit_return and 'return' in hints:
        return_pytype = hints['return']

    http_param = next((p for p, t in inputs.items()
                       if t.binding_name == 'httpTrigger'), None)
    info = FunctionInfo(
        func=func, name=name, directory=directory, function_id=function_id,
        requires_context=requires_context,
        is_async=inspect.iscoroutinefunction(func),
        has_return=explicit_return or implicit_return,
        is_http_func=http_param is not None,
        deferred_bindings_enabled=any(t.deferred for t in inputs.values()),
        input_types=inputs, output_types=outputs,
        return_type=(ParamTypeInfo(return_binding_type, return_pytype)
                     if explicit_return or implicit_return else None),
        trigger_metadata=({'type': 'httpTrigger', 'param_name': http_param}
                          if http_param else None))
    functions[function_id] = info
    return info


# ---------------------------------------------------------------- v2

def _script_file_name(configured):
    return configured or os.environ.get(V2_SCRIPT_SETTING, V2_SCRIPT_DEFAULT)


def _find_app(module, script_name):
    register = _library().FunctionRegister
    app = None
    for attr in module.__dir__():
        value = getattr(module, attr, None)
        if isinstance(value, register):
            if app is not None:
                raise ValueError(
                    f'More than one {app.__class__.__name__} or other top '
                    'level function app instances are defined.')
            app = value
    if app is None:
        raise ValueError('Could not find top level function app instances '
                         f'in {script_name}.')
    return app


def _hms_seconds(text):
    t = time.strptime(text, '%H:%M:%S')
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec


def _retry(function):
    """The retry object of the metadata (host-protocol.md §4 item 7)."""
    settings = function.get_settings_dict('retry_policy')
    if not settings:
        return None
    strategy = settings.get('strategy')
    retry = {'strategy': strategy,
             'maxRetryCount': int(settings.get('max_retry_count'))}
    keys = (('delay_interval', 'delayInterval'),) \
        if strategy == 'fixed_delay' else \
        (('minimum_interval', 'minimumInterval'),
         ('maximum_interval', 'maximumInterval'))
    for key, out in keys:
        value = settings.get(key)
        _hms_seconds(value)  # the worker fails indexing on a bad interval
        retry[out] = value
    return retry


def _binding_object(raw):
    """A raw binding (enum names) in function.json syntax (lower case)."""
    b = json.loads(raw)
    if isinstance(b.get('direction'), str):
        b['direction'] = b['direction'].lower()
    data_type = b.pop('dataType', None)
    if isinstance(data_type, str) and data_type.lower() != 'undefined':
        b['dataType'] = data_type.lower()
    return b


def _metadata(function, app_dir):
    func = function.get_user_function()
    name = function.get_function_name()
    function_id = str(uuid.uuid5(uuid.NAMESPACE_OID, name))
    directory = str(pathlib.Path(inspect.getfile(func)).parent)
    fi = analyse(func, name, function_id, directory, function.get_bindings())
    if fi.deferred_bindings_enabled:
        # SupportsDeferredBinding in the raw bindings makes the host send
        # model_binding_data for SDK-type parameters.
        raw = list(deferred_registry().get_raw_bindings(
            function, fi.input_types)[0])
    else:
        raw = list(function.get_raw_bindings())
    meta = {'name': name, 'functionId': function_id, 'directory': app_dir,
            'scriptFile': function.function_script_file, 'entryPoint': name,
            'bindings': [_binding_object(r) for r in raw],
            'rawBindings': raw}
    retry = _retry(function)
    if retry is not None:
        meta['retry'] = retry
    meta['properties'] = {'worker_indexed': 'True'}
    return json.dumps(meta)


def _index_app(app_dir, script_name):
    if not V2_SCRIPT_NAME.match(script_name):
        raise InvalidFileNameError(script_name)
    path = os.path.join(app_dir, script_name)
    if not os.path.exists(path):
        return None
    _use_app_root(app_dir)
    try:
        module = importlib.import_module(pathlib.Path(path).stem)
        global _app_object
        _app_object = _find_app(module, script_name)
        indexed = _app_object.get_functions()
    except ImportError as exc:
        raise _with_import_hint(exc) from None
    return [_metadata(f, app_dir) for f in indexed]


def index(app_dir, script_name=None):
    """v2 indexing: a list of metadata JSON strings, or None when the host
    should read function.json itself (no script, or no functions)."""
    global _index
    if _index is None:
        try:
            _index = ('ok', _index_app(app_dir, _script_file_name(script_name)))
        except BaseException as exc:
            _index = ('error', exc)
    if _index[0] == 'error':
        raise _index[1]
    return _index[1] or None


# ---------------------------------------------------------------- v1

def _v1_bindings(value):
    """Bindings from a function.json list or a name -> BindingInfo map."""
    if isinstance(value, dict):
        value = [dict(v, name=k) for k, v in value.items()]

    def number(v, table):
        return table.get(v.lower(), -1) if isinstance(v, str) else int(v or 0)
    return [Binding(b.get('name'), b.get('type'),
                    number(b.get('direction', 'in'), DIRECTIONS),
                    number(b.get('dataType'), DATA_TYPES)) for b in value]


def _import_v1(name, directory, script_file, entry_point):
    dir_path = pathlib.Path(os.path.normpath(directory))
    script = pathlib.Path(script_file or DEFAULT_SCRIPT_FILE)
    script = pathlib.Path(os.path.normpath(dir_path / script))
    app_root = dir_path.parent
    try:
        rel = script.relative_to(app_root)
    except ValueError:
        raise RuntimeError(f'script path {script_file} is not relative to '
                           f'the specified directory {directory}') from None
    stem, ext = os.path.splitext(rel.parts[-1])
    if ext != '.py':
        raise RuntimeError(f'cannot load function {name}: invalid Python '
                           f'filename {script_file}')
    _app_package(_use_app_root(str(app_root)))
    parts = [APP_PACKAGE, *rel.parts[:-1]]
    if stem.lower() != '__init__':  # the package itself is the module
        parts.append(stem)
    try:
        module = importlib.import_module('.'.join(parts))
    except ImportError as exc:
        raise _with_import_hint(exc) from None
    func = getattr(module, entry_point, None)
    if func is None or not callable(func):
        raise RuntimeError(f'cannot load function {name}: function '
                           f'{entry_point}() is not present in {rel}')
    return func


def load(function_id, metadata_json):
    """FunctionLoadRequest (host-protocol.md §3.5)."""
    if function_id in functions:
        return None
    meta = json.loads(metadata_json)
    directory = meta.get('directory') or ''
    if (meta.get('properties') or {}).get('worker_indexed'):
        # Another worker process indexed the app: index it here too.
        try:
            index(directory)
        except BaseException as exc:
            raise Exception(exc).with_traceback(exc.__traceback__) from None
        if function_id not in functions:
            raise RuntimeError(f'function {meta.get("name")} ({function_id}) '
                               'is not in the indexed app')
        _post_function_load(functions[function_id])
        return None
    name = meta.get('name')
    func = _import_v1(name, directory, meta.get('scriptFile'),
                      meta.get('entryPoint') or DEFAULT_ENTRY_POINT)
    _post_function_load(analyse(func, name, function_id, directory,
                                _v1_bindings(meta.get('bindings') or [])))
    return None


def _post_function_load(fi):
    """Worker extensions after a successful load (azure-functions-library §10)."""
    hooks = globals().get('_hooks')
    if hooks is None:
        return
    app_hooks, fn_hooks = hooks(fi)
    _run_hooks(fn_hooks, 'post_function_load', fi.name, fi.directory)
    _run_hooks(app_hooks, 'post_function_load_app_level', fi.name,
               fi.directory)


# ================================================================ invocations
# host-protocol.md §6 and azure-functions-library.md §2-3, §7, §10.
# The C side (_azfunc_native) queues invocations without the GIL and wakes the
# asyncio loop thread through an eventfd; inputs arrive already shaped as
# azure.functions Datums; outputs go back as plain tuples:
#   ('string'|'json', str), ('bytes', bytes), ('int', int), ('double', float),
#   ('http', status, [(name, value)], body_raw, [cookie tuples]) or None.

import asyncio
import contextvars
import logging
import queue
import threading
import types

import _azfunc_native as native

SYSTEM_LOGGERS = ('azure_functions_worker', 'azure.functions')
TRUE_VALUES = ('1', 'true', 't', 'yes', 'y')
FALSE_VALUES = ('0', 'false', 'f', 'no', 'n')
SAME_SITE = {'lax': 1, 'strict': 2, 'none': 3}

_loop = None
_loop_thread = None
_pool = None
_tasks = {}             # id(capsule) -> asyncio.Task
_current = contextvars.ContextVar('azfunc_invocation', default=None)
thread_local_storage = threading.local()
_running = {}           # invocation id -> capsule (for logs)
_log_handler = None
_extensions_enabled = False


def _env_true(name):
    return os.environ.get(name, '').strip().lower() in TRUE_VALUES


def _env_false(name):
    return os.environ.get(name, '').strip().lower() in FALSE_VALUES


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


def _apply_settings():
    global _pool, _extensions_enabled
    old = _pool
    _pool = _Pool(_thread_count())
    if old is not None:
        old.shutdown()
    logging.getLogger().setLevel(
        logging.DEBUG if _env_true('PYTHON_ENABLE_DEBUG_LOGGING')
        else logging.INFO)
    _extensions_enabled = _env_true('PYTHON_ENABLE_WORKER_EXTENSIONS') or (
        sys.version_info[:2] == (3, 9)
        and not _env_false('PYTHON_ENABLE_WORKER_EXTENSIONS'))


def _task_factory(loop, coro, **kwargs):
    # Child tasks copy the context, so they inherit _current; the attribute
    # is the official worker's marker, kept for code that reads it.
    task = asyncio.Task(coro, loop=loop, **kwargs)
    inv = _current.get()
    if inv is not None:
        task.__azure_function_invocation_id__ = inv
    return task


_bound = False


def _bind_library():
    """Hands azure.functions' Datum to the C side. Called once the app's
    paths are in place, so that the app's own copy of the library wins."""
    global _bound
    if not _bound:
        try:
            from azure.functions.meta import Datum
        except ModuleNotFoundError as exc:
            if exc.name not in ('azure', 'azure.functions',
                                'azure.functions.meta'):
                raise
            raise ModuleNotFoundError(
                "No module named 'azure.functions': the azure-functions "
                'package is not installed for Python %d.%d (%s), neither '
                "with the app (.python_packages, its virtual environment) "
                'nor with libazfunc' % (*sys.version_info[:2],
                                        sys.executable or sys.prefix),
                name='azure.functions') from None
        native.setup(Datum, types.SimpleNamespace)
        _bound = True


def start():
    """Starts the loop thread and the logging bridge (plugin open). Imports
    nothing of azure.functions: the app's paths are not known yet."""
    global _loop, _loop_thread, _log_handler
    fd = native.setup(None, types.SimpleNamespace)
    _log_handler = _Bridge()
    _log_handler.setFormatter(logging.Formatter('%(message)s'))
    logging.getLogger().addHandler(_log_handler)
    _apply_settings()
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
    app = _app_object
    if not getattr(app, 'startup_task_done', False):
        return
    try:
        asyncio.run_coroutine_threadsafe(
            app.middleware.notify_shutdown(), loop).result(5)
    except BaseException:
        logging.getLogger('azure_functions_worker').warning(
            'the ASGI application did not shut down cleanly', exc_info=True)
    app.startup_task_done = False


def reload_environment(env, app_dir):
    """FunctionEnvironmentReloadRequest, in the worker's order (§3.8)."""
    if app_dir:
        sys.path.append(app_dir)
        sys.path_importer_cache.clear()
    os.environ.clear()
    os.environ.update(env)
    if hasattr(time, 'tzset'):
        time.tzset()
    _apply_settings()
    if app_dir and not _env_true('PYTHON_ROLLBACK_CWD_PATH'):
        os.chdir(app_dir)
    return None


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
    fi = functions.get(function_id)
    if fi is None:
        fi = next((f for f in functions.values() if f.name == name), None)
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
    if fi.is_async:
        task = _loop.create_task(_run_async(cap, fi, inv_id))
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


def _hooks(fi):
    if not _extensions_enabled:
        return None, None
    meta = getattr(_library(), 'ExtensionMeta', None)
    if meta is None:
        return None, None
    return meta.get_application_hooks(), meta.get_function_hooks(fi.name)


def _run_hooks(hooks, attr, *args, logger=False):
    """Calls every hook of one kind; a hook's exception is logged and the
    chain goes on. Invocation hooks get their extension's logger first."""
    for hook in getattr(hooks, attr, None) or ():
        try:
            if logger:
                hook.ext_impl(logging.getLogger(
                    f'azure_functions_worker.extension.{hook.ext_name}'), *args)
            else:
                hook.ext_impl(*args)
        except Exception:
            logging.getLogger('azure_functions_worker').exception(
                'extension %s failed in %s', hook.ext_name, attr)


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
        app_hooks, fn_hooks = _hooks(fi)
        _run_hooks(app_hooks, 'pre_invocation_app_level', ctx, args,
                   logger=True)
        _run_hooks(fn_hooks, 'pre_invocation', ctx, args, logger=True)
        result = fi.func(**args)
        _run_hooks(fn_hooks, 'post_invocation', ctx, args, result,
                   logger=True)
        _run_hooks(app_hooks, 'post_invocation_app_level', ctx, args,
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
        app_hooks, fn_hooks = _hooks(fi)
        _run_hooks(app_hooks, 'pre_invocation_app_level', ctx, args,
                   logger=True)
        _run_hooks(fn_hooks, 'pre_invocation', ctx, args, logger=True)
        result = await fi.func(**args)
        _run_hooks(fn_hooks, 'post_invocation', ctx, args, result,
                   logger=True)
        _run_hooks(app_hooks, 'post_invocation_app_level', ctx, args,
                   result, logger=True)
        _finish(cap, fi, args, result)
    except asyncio.CancelledError:
        sys.stdout.flush()
        native.cancelled(cap)
    except BaseException as exc:
        _fail(cap, exc)
    finally:
        _running.pop(inv_id, None)
