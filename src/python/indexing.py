"""libazfunc Python adapter, indexing part: sys.path, app indexing (v2),
function loading (v1 and v2), signature analysis and the environment reload.

Compiled into the plugin as _azfunc_indexing (see common.py). Behaviour follows
shared/reference/host-protocol.md §3.4, §3.5, §3.8, §3.10, §4, §5 and
azure-functions-library.md §2-4; error texts are the official worker's.
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
import types
import typing
import uuid

import _azfunc_httpstream as httpstream
from _azfunc_common import (converter, deferred_registry, env_true,
                            has_implicit_output, hooks, library, run_hooks)

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
app_object = None       # the v2 FunctionRegister


# ---------------------------------------------------------------- errors

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
_bound = False          # azure.functions' Datum handed to the C side


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
    if venv:  # as site.py does for a venv's own python
        sys.prefix = sys.exec_prefix = os.path.abspath(venv)
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
    if _app_root is None and _front is None:
        # Extension mode: the host interpreter may have served other apps (with
        # their own function_app.py) before; this one's directories go first.
        for p in reversed([app_root] + _app_packages(app_root)[:1]):
            if p in sys.path:
                sys.path.remove(p)
            sys.path.insert(0, p)
        _app_root = app_root
    elif _app_root is None:
        at = _front
        for p in _app_packages(app_root):
            if p not in sys.path:
                sys.path.insert(at, p)
                at += 1
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


def _bind_library():
    """Hands azure.functions' Datum to the C side, once the app's paths are in
    place: the app's own copy of the library wins over libazfunc's."""
    global _bound
    if _bound:
        return
    try:
        from azure.functions.meta import Datum
    except ModuleNotFoundError as exc:
        if exc.name not in ('azure', 'azure.functions', 'azure.functions.meta'):
            raise
        raise ModuleNotFoundError(
            "No module named 'azure.functions': the azure-functions package "
            'is not installed for Python %d.%d (%s), neither with the app '
            "(.python_packages, its virtual environment) nor with libazfunc"
            % (*sys.version_info[:2], sys.executable or sys.prefix),
            name='azure.functions') from None
    import _azfunc_native
    _azfunc_native.setup(Datum, types.SimpleNamespace)
    _bound = True


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
        if has_anno and not is_out and httpstream.accepts(b.type, pytype):
            pass  # an HTTP extension's request type (httpstream.py)
        elif has_anno:
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
        if not httpstream.accepts(return_binding_type, ranno, True) and \
                not converter(return_binding_type).check_output_type_annotation(
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
    httpstream.note_function(function_id, http_param is not None)
    return info


# ---------------------------------------------------------------- v2

def _script_file_name(configured):
    return configured or os.environ.get(V2_SCRIPT_SETTING, V2_SCRIPT_DEFAULT)


def _find_app(module, script_name):
    register = library().FunctionRegister
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
        global app_object
        app_object = _find_app(module, script_name)
        indexed = app_object.get_functions()
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
    app_hooks, fn_hooks = hooks(fi)
    run_hooks(fn_hooks, 'post_function_load', fi.name, fi.directory)
    run_hooks(app_hooks, 'post_function_load_app_level', fi.name,
               fi.directory)


# ---------------------------------------------------------------- reload

def reload_environment(env, app_dir):
    """FunctionEnvironmentReloadRequest, in the worker's order (§3.8); the
    plugin then has the invocation module apply the new settings."""
    if app_dir:
        sys.path.append(app_dir)
        sys.path_importer_cache.clear()
    os.environ.clear()
    os.environ.update(env)
    if hasattr(time, 'tzset'):
        time.tzset()
    if app_dir and not env_true('PYTHON_ROLLBACK_CWD_PATH'):
        os.chdir(app_dir)
    return None
