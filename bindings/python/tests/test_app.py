"""azfunc.app: v1 and v2 apps of tests/apps opened in-process, listed, and
invoked through the worker's binding path."""
import json

import azure.functions as func
import pytest

import azfunc
from azfunc.app import App, AppError, FunctionError


@pytest.fixture
def v2_http(apps):
    with App(apps / 'v2_http') as app:
        yield app


@pytest.fixture
def inv_http(apps):
    with App(apps / 'inv_v2_http') as app:
        yield app


def test_v2_listing(v2_http):
    assert v2_http.version == 2
    fns = v2_http.functions
    assert {'hello', 'DefaultRoute', 'put_item', 'tick'} <= set(fns)
    hello = fns['hello']
    assert (hello.trigger, hello.trigger_type, hello.route) == ('req', 'httpTrigger', 'hello')
    assert hello.binding('$return') == {'direction': 'out', 'type': 'http', 'name': '$return'}
    assert hello.function_id == '4d71d03f-f19b-5d9e-8523-9628ba18063c'
    assert fns['tick'].trigger_type == 'timerTrigger' and fns['tick'].load_error is None
    with pytest.raises(KeyError, match='nope'):
        v2_http.function('nope')


def test_v2_http_invoke(v2_http):
    resp = v2_http.call('hello', req={'query': {'name': 'bob'}})
    assert isinstance(resp, func.HttpResponse)
    assert (resp.status_code, resp.get_body()) == (200, b'hello bob')
    # a str return goes to the host as TypedData string; Context is the worker's
    r = v2_http.invoke('DefaultRoute', req={})
    assert r.ok and r.return_value == 'DefaultRoute' and r.raw_return == ('string', 'DefaultRoute')
    assert r.raw_return[0] == 'string'


def test_v2_out_binding_async(v2_http):
    r = v2_http.invoke('put_item', req={'method': 'PUT', 'route_params': {'id': '3'},
                                        'body': 'payload'})
    assert r.status == 'succeeded'
    assert r.return_value.status_code == 202
    assert r.outputs == {'msg': 'payload'}


def test_http_request_object(inv_http):
    req = func.HttpRequest('POST', 'http://localhost/api/echo/9', headers={'X-One': '1'},
                           params={'p': 'q'}, route_params={'id': '9'}, body=b'{"a": 1}')
    resp = inv_http.call('echo', req=req)
    assert resp.status_code == 201
    assert resp.headers['content-type'] == 'application/json'
    seen = json.loads(resp.get_body())
    assert seen['method'] == 'POST' and seen['json'] == {'a': 1}
    assert seen['headers']['x-one'] == '1' and seen['route_params'] == {'id': '9'}
    assert seen['params'] == {'p': 'q'}


def test_http_dict_defaults_and_logs(inv_http):
    r = inv_http.invoke('echo', {'req': {'route_params': {'id': '8'}, 'query': {'a': 'b'},
                                         'body': {'k': [1, 2]}}})
    seen = json.loads(r.return_value.get_body())
    assert seen['url'] == 'http://localhost/api/echo/8?a=b'
    assert seen['json'] == {'k': [1, 2]} and seen['method'] == 'GET'
    assert r.logs == [('INFO', 'root', 'echo 8')]
    assert inv_http.call('text', req={'query': {'name': 'x'}}) == 'plain x'
    raw = inv_http.call('raw', req={})
    assert raw.get_body() == b'\x01\x02' and raw.mimetype == 'application/octet-stream'
    assert inv_http.call('empty', req={}).status_code == 204


def test_failures_carry_the_workers_texts(inv_http):
    r = inv_http.invoke('badtype', req={})
    assert r.status == 'failed'
    assert r.error == ('TypeError: unable to encode outgoing TypedData: '
                       'unsupported type "<class \'azure.functions.http.HttpResponseConverter\'>" '
                       'for Python type "int"')
    with pytest.raises(FunctionError) as e:
        inv_http.call('none', req={})
    assert str(e.value).endswith('for Python type "NoneType"')
    # a value the host would never send for an HTTP trigger, passed raw
    r = inv_http.invoke('echo', req=('string', 'not http'))
    assert r.error.startswith('TypeError: unable to decode incoming TypedData: '
                              "unsupported combination of TypedData field 'string'")
    with pytest.raises(ValueError, match='no input binding'):
        inv_http.invoke('echo', req={}, nope='x')


def test_v1_app(apps):
    with App(apps / 'v1_app') as app:
        assert app.version == 1
        assert set(app.functions) == {'HttpAlt', 'HttpTrigger', 'Nested', 'TimerCustomEntry',
                                      'Untyped'}
        t = app.functions['TimerCustomEntry']
        assert (t.trigger_type, t.entry_point) == ('timerTrigger', 'run')
        assert app.call('HttpTrigger', req={'query': {'name': 'ann'}}).get_body() == b'HELLO ANN'
        assert app.call('HttpAlt', req={}) == 'the same module, another entry point'
        r = app.invoke('TimerCustomEntry', timer={'IsPastDue': False}, config='cfg text')
        assert r.ok and r.outputs == {'msg': 'cfg text'} and r.return_value is None
        # a dict goes in as TypedData json; an untyped parameter gets its text, as in the worker
        assert app.call('Untyped', req={}, row={'PartitionKey': 'p'}) == '{"PartitionKey": "p"}'



def test_v1_bindings_and_types(apps):
    with App(apps / 'inv_v1_bindings') as app:
        assert app.version == 1
        for name, fn in app.functions.items():
            assert fn.load_error is None, name


def test_indexing_error_is_raised(apps):
    with pytest.raises(AppError) as e:
        App(apps / 'v2_syntax_error')
    assert str(e.value).startswith('SyntaxError: expected ')
    assert e.value.code == -14
    # the failed app was closed: another one opens
    with App(apps / 'v2_http') as app:
        assert 'hello' in app.functions


def test_load_error_is_raised(apps):
    with App(apps / 'v1_import_error') as app:
        fn = app.functions['v1_import_error']
        assert fn.load_error.startswith("ImportError: cannot import name 'no_such_name' from 'os'")
        with pytest.raises(AppError, match='no_such_name'):
            app.invoke('v1_import_error', req={})


def test_one_app_at_a_time(apps, v2_http):
    with pytest.raises(FileNotFoundError):
        App(apps / 'no_such_app')
    with pytest.raises(RuntimeError, match='already open'):
        App(apps / 'v1_app')


def test_closed_app(apps):
    app = App(apps / 'v2_http')
    app.close()
    app.close()
    with pytest.raises(RuntimeError, match='closed'):
        app.invoke('hello', req={})
    assert issubclass(AppError, azfunc.Error)


def test_bad_values_are_clear_errors(inv_http):
    with pytest.raises(ValueError, match="unknown value kind 'nope'"):
        inv_http.invoke('echo', req=('nope', 1))
    with pytest.raises(TypeError):
        inv_http.invoke('echo', req=('int', 'x'))
    with pytest.raises(TypeError):
        inv_http.invoke('echo', req=('http', {'headers': [1, 2]}))
    with pytest.raises(TypeError):
        inv_http.invoke('echo', req=('http', {'body': ('string', 7)}))
    with pytest.raises(TypeError, match='cannot pass a object'):
        inv_http.invoke('text', req={}, nope=object())
    with pytest.raises(TypeError, match='HTTP input'):
        inv_http.invoke('echo', req=42)
    # the app is still fine
    assert inv_http.call('text', req={'query': {'name': 'ok'}}) == 'plain ok'


def test_invocations_from_many_threads(inv_http):
    """invoke releases the GIL while the adapter's threads run the function."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda i: inv_http.call('text', req={'query': {'name': str(i)}}),
                            range(40)))
    assert got == [f'plain {i}' for i in range(40)]
