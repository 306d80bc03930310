"""Loads the adapter's Python modules (src/python/*.py) the way the plugin
does: compiled under their "<azfunc-...>" file names and registered in
sys.modules as _azfunc_common, _azfunc_indexing and _azfunc_invocation.
`_azfunc_native` (the plugin's C module) is replaced by a recording stand-in:
these tests cover the modules' pure functions, not the plugin."""

import sys
import types
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / 'src' / 'python'
MODULES = ('common', 'telemetry', 'httpstream', 'indexing', 'invocation',
           'startup')


def _load(name):
    module = types.ModuleType(f'_azfunc_{name}')
    module.__file__ = f'<azfunc-{name}>'
    sys.modules[module.__name__] = module
    code = compile((SRC / f'{name}.py').read_text(), module.__file__, 'exec')
    exec(code, module.__dict__)
    return module


def _load_all():
    sys.modules.setdefault('_azfunc_native', types.ModuleType('_azfunc_native'))
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
