"""Loads the adapter's Python modules (src/python/*.py) the way the plugin
does: compiled under their "<azfunc-...>" file names and registered in
sys.modules as _azfunc_common, _azfunc_indexing and _azfunc_invocation.
`_azfunc_native` (the plugin's C module) is replaced by a stand-in:
these tests cover the modules' pure functions, not the plugin."""

import re
import sys
import types
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / 'src' / 'python'
MODULES = ('common', 'telemetry', 'httpstream', 'indexing', 'invocation',
           'startup')


def _load(name):
    module = types.ModuleType(f'_azfunc_{name}')
    module.__file__ = f'<azfunc-{name}>'
    sys.modules[module.__name__] = module
    code = compile((SRC / f'{name}.py').read_text(), module.__file__, 'exec')
    exec(code, module.__dict__)
    return module


def kinds():
    """The AZF_VALUE_* table of include/azfunc/value.h, as native.kinds()
    returns it (the names are azf_value_kind_name's: the lower-case suffix)."""
    header = (ROOT / 'include' / 'azfunc' / 'value.h').read_text()
    return {m[1].lower(): int(m[2])
            for m in re.finditer(r'AZF_VALUE_(\w+) = (\d+)', header)}


def _load_all():
    native = types.ModuleType('_azfunc_native')
    native.kinds = kinds
    native.thread_counts = []
    native.set_thread_count = native.thread_counts.append
    sys.modules['_azfunc_native'] = native
    return {name: _load(name) for name in MODULES}


_modules = _load_all()


@pytest.fixture
def common():
    return _modules['common']


@pytest.fixture
def indexing():
    return _modules['indexing']


@pytest.fixture
def invocation():
    return _modules['invocation']


@pytest.fixture
def telemetry():
    return _modules['telemetry']


@pytest.fixture
def httpstream():
    return _modules['httpstream']
