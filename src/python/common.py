"""libazfunc Python adapter, common part: error descriptions, converters,
settings and worker-extension hooks, used by both the indexing and the
invocation module.

The plugin compiles the three modules into libazfunc-python3.X.so and
registers them in sys.modules as _azfunc_common, _azfunc_indexing and
_azfunc_invocation before anything else runs, so user code on sys.path cannot
shadow them. The C side calls `run()` with an entry point and gets
`(0, result)` or `(1, (message, stack_trace))` back, so no exception ever
crosses into C.
"""

import logging
import os
import sys
import traceback

# The file names the plugin compiles the adapter modules under (all start
# with this prefix); their frames are internal and are left out of
# user-facing stack traces.
ADAPTER_FILE_PREFIX = '<azfunc-'

TRUE_VALUES = ('1', 'true', 't', 'yes', 'y')
FALSE_VALUES = ('0', 'false', 'f', 'no', 'n')

# PYTHON_ENABLE_WORKER_EXTENSIONS, as the invocation module last read it.
extensions_enabled = False


# ---------------------------------------------------------------- errors

def describe(exc):
    """(message, stack_trace) in the worker's RpcException shape (§3.10)."""
    try:
        message = f'{type(exc).__name__}: {exc}'
    except Exception:
        message = ('Unhandled exception in function. '
                   'Could not serialize original exception message.')
    try:
        hidden = set()
        if isinstance(exc, ModuleNotFoundError):
            hidden |= {'<frozen importlib._bootstrap>',
                       '<frozen importlib._bootstrap_external>'}
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if f.filename not in hidden
                  and not f.filename.startswith(ADAPTER_FILE_PREFIX)]
        stack = ''.join(traceback.StackSummary.from_list(frames).format())
    except Exception:
        stack = ''
    return message, stack


def run(entry, *args):
    try:
        return 0, entry(*args)
    except BaseException as exc:  # user code may raise SystemExit too
        return 1, describe(exc)


# ---------------------------------------------------------------- settings

def env_true(name):
    return os.environ.get(name, '').strip().lower() in TRUE_VALUES


def env_false(name):
    return os.environ.get(name, '').strip().lower() in FALSE_VALUES


# ---------------------------------------------------------------- converters

def library():
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
    return library().get_binding_registry().get(binding_type) or GenericBinding


def has_implicit_output(binding_type):
    conv = converter(binding_type)
    if conv is GenericBinding:
        return GenericBinding.has_implicit_output(binding_type)
    check = getattr(conv, 'has_implicit_output', None)
    return bool(check()) if check is not None else False


# ---------------------------------------------------------------- extensions

def hooks(fi):
    """(application hooks, function hooks) of worker extensions, or Nones."""
    if not extensions_enabled:
        return None, None
    meta = getattr(library(), 'ExtensionMeta', None)
    if meta is None:
        return None, None
    return meta.get_application_hooks(), meta.get_function_hooks(fi.name)


def run_hooks(hooks, attr, *args, logger=False):
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
