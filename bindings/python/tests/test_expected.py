"""Every app of tests/apps with an expected.json (the adapter's own suite,
tests/python/test_python_apps.c) opened through azfunc.app: the same
functions, and the same indexing and load errors with the worker's texts."""
import json
import re

import pytest

from azfunc.app import App, AppError
from conftest import APPS

CASES = sorted(p.parent.name for p in APPS.glob('*/expected.json'))

# Embedded-interpreter facts that extension mode does not share by design: the
# running interpreter keeps its own sys.path (only the app's directories go first).
EMBEDDED_ONLY = {'v2_paths': 'checks the embedded sys.path layout'}
VENV_TAIL = ", '.*/\\.venv/lib/python3\\.[0-9]+/site-packages'"

# v1 folders whose function.json the registry rejects before Python sees it (as
# the host does): the App reports the registry's text, not the adapter's.
REGISTRY_TEXT = {
    'v1_return_param_in': r"function\.json: \$return bindings must specify a direction of 'out'\.$",
    'v1_script_outside_root': r"function\.json: the scriptFile '\.\./\.\./outside_script\.py' "
                              r'is outside the function app root\.$',
}


def match(pattern, text):
    assert re.search(pattern, text or ''), f'{text!r} does not match {pattern!r}'


@pytest.mark.parametrize('name', CASES)
def test_app(name, monkeypatch):
    exp = json.loads((APPS / name / 'expected.json').read_text())
    if exp.get('bindings_as_map'):
        pytest.skip('bindings as a map: a host-side form the App does not send')
    if name in EMBEDDED_ONLY:
        pytest.skip(EMBEDDED_ONLY[name])
    for k, v in exp.get('env', {}).items():
        monkeypatch.setenv(k, v)
    index = exp.get('index', {})
    if 'error' in index:
        with pytest.raises(AppError) as e:
            App(APPS / name)
        match(index['error'].replace(VENV_TAIL, ''), str(e.value))
        if 'stack' in index:
            match(index['stack'], e.value.stack_trace)
        return
    with App(APPS / name) as app:
        assert app.version == (1 if index.get('use_default') else 2)
        for f in index.get('functions', []):
            fn = app.functions[f['name']]
            assert fn.function_id == f['functionId']
            assert fn.load_error is None
        for folder, want in exp.get('load', {}).items():
            fn = app.functions[folder]
            if want is None:
                assert fn.load_error is None, fn.load_error
            else:
                match(REGISTRY_TEXT.get(folder, want['error']), fn.load_error)
