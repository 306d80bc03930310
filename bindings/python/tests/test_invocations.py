"""The adapter's invocation cases (tests/apps/inv_*/invocations.json, run in C
by tests/python/test_python_invoke.c) replayed through azfunc.app: the same
TypedData in, the same outcome out, for every binding type of the v1 and v2
test apps."""
import json
import re

import pytest

from azfunc.app import _LEVELS, App
from conftest import APPS

# Features the in-process App does not expose (concurrency, cancel, drain,
# trace and retry context, environment reload) are left to the C suite.
UNSUPPORTED_CASE = {'repeat', 'cancel', 'trace', 'retry'}
UNSUPPORTED_APP = {'drain', 'reload', 'requires', 'system_log'}


def typed(v):
    """invocations.json VALUE -> (kind, payload)."""
    if v is None:
        return None
    (kind, payload), = v.items()
    if kind == 'http':
        h = payload
        return ('http', {'method': h.get('method'), 'url': h.get('url'),
                         'headers': list(h.get('headers', {}).items()),
                         'query': list(h.get('query', {}).items()),
                         'params': list(h.get('params', {}).items()),
                         'body': typed(h.get('body'))})
    if kind in ('bytes', 'stream'):
        return (kind, payload.encode())
    if kind == 'collection_bytes':
        return (kind, [p.encode() for p in payload])
    if kind == 'collection_sint64':
        return (kind, [int(p) for p in payload])
    return (kind, payload)


def check_value(want, got, where):
    if want is None:
        assert got is None, where
        return
    (kind, payload), = want.items()
    assert got is not None and got[0] == kind, (where, got)
    if kind != 'http':
        if kind == 'json':
            assert json.loads(got[1]) == json.loads(payload), where
        else:
            assert got == typed(want), where
        return
    h = got[1]
    if 'status' in payload:
        assert h['status_code'] == payload['status'], where
    headers = {k.lower(): v for k, v in h['headers']}
    for k, v in payload.get('headers', {}).items():
        assert headers.get(k.lower()) == v, (where, k, headers)
    for k in payload.get('headers_absent', []):
        assert k.lower() not in headers, (where, k)
    if 'body' in payload:
        check_value(payload['body'], h['body'], where + '.body')
    if 'cookies' in payload:
        assert [(c['name'], c['value']) for c in payload['cookies']] == h['cookies'], where


def cases():
    for f in sorted(APPS.glob('inv_*/invocations.json')):
        spec = json.loads(f.read_text())
        if UNSUPPORTED_APP & set(spec):
            continue
        for i, case in enumerate(spec['cases']):
            if not UNSUPPORTED_CASE & set(case):
                yield pytest.param(f.parent.name, spec.get('env', {}), case, f'inv-{case["function"]}-{i}',
                                   id=f'{f.parent.name}-{i}-{case["function"]}')


ALL = list(cases())


@pytest.fixture(scope='module')
def opened():
    state = {}
    yield state
    if state:
        state['app'].close()


def test_replayed_apps():
    """Both generations are covered: v1 function.json apps and v2 apps."""
    names = {p.values[0] for p in ALL}
    assert {'inv_v1_bindings', 'inv_v2_bindings', 'inv_v2_http'} <= names


@pytest.mark.parametrize('app_name, env, case, inv_id', ALL)
def test_case(app_name, env, case, inv_id, opened, monkeypatch):
    if opened.get('name') != app_name:
        if opened:
            opened['app'].close()
            opened.clear()
        for k, v in env.items():
            monkeypatch.setenv(k, v.replace('%APP%', str(APPS / app_name)))
        opened.update(name=app_name, app=App(APPS / app_name))
    app = opened['app']
    r = app.invoke(case['function'], {k: typed(v) for k, v in case['inputs'].items()},
                   trigger_metadata={k: typed(v) for k, v in case.get('metadata', {}).items()},
                   invocation_id=inv_id)
    exp = case['expect']
    assert r.status == exp.get('status', 'succeeded'), r.error
    if 'error' in exp:
        assert re.search(exp['error'], r.error), r.error
    if 'stack' in exp:
        assert re.search(exp['stack'], r.stack_trace), r.stack_trace
    if 'return' in exp:
        check_value(exp['return'], r.raw_return, 'return')
    for name, want in exp.get('outputs', {}).items():
        check_value(want, r.raw_outputs.get(name), name)
    logs = iter(r.logs)  # in order, others may come between
    for want in exp.get('logs', []):
        assert any(_LEVELS.index(lvl) == want['level'] and cat == want['category']
                   and re.search(want['message'], msg) for lvl, cat, msg in logs), (want, r.logs)
