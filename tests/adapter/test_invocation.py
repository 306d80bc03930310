"""invocation.py: log levels, settings and output encoding."""

import datetime
import logging

import azure.functions as func
import pytest


@pytest.mark.parametrize('levelno,rpc', [
    (logging.CRITICAL, 5), (logging.ERROR, 4), (logging.WARNING, 3),
    (logging.INFO, 2), (logging.DEBUG, 1), (5, 6)])
def test_log_level(invocation, levelno, rpc):
    assert invocation._log_level(levelno) == rpc


@pytest.mark.parametrize('raw,count', [(None, None), ('3', 3), ('0', None),
                                       ('many', None)])
def test_thread_count(invocation, monkeypatch, raw, count):
    default = min(32, (__import__('os').cpu_count() or 1) + 4)
    if raw is None:
        monkeypatch.delenv('PYTHON_THREADPOOL_THREAD_COUNT', raising=False)
    else:
        monkeypatch.setenv('PYTHON_THREADPOOL_THREAD_COUNT', raw)
    assert invocation._thread_count() == (count or default)


def test_generic_encode(invocation):
    k = invocation.KINDS
    assert invocation._generic_encode('s') == (k['string'], 's')
    assert invocation._generic_encode(bytearray(b'b')) == (k['bytes'], b'b')
    assert invocation._generic_encode({'a': 1}) == (k['json'], '{"a": 1}')
    assert invocation._generic_encode(7) == (k['int'], 7)
    assert invocation._generic_encode(1.5) == (k['double'], 1.5)
    assert invocation._generic_encode(None) is None
    with pytest.raises(NotImplementedError):
        invocation._generic_encode(object())


def test_kinds_are_the_c_table(invocation):
    # AZF_VALUE_* of include/azfunc/value.h, not names the module keeps.
    assert invocation.KINDS['string'] == 1 and invocation.KIND_HTTP == 5
    assert invocation._DATUM_KINDS['bool'] == invocation.KINDS['int']


def test_generic_decode(invocation):
    from azure.functions.meta import Datum
    assert invocation._generic_decode(Datum('x', 'string')) == 'x'
    assert invocation._generic_decode(None) is None
    with pytest.raises(ValueError):
        invocation._generic_decode(Datum(1, 'int'))


def test_encode_http_response(invocation):
    resp = func.HttpResponse('hi', status_code=201, headers={'X-A': 'b'})
    raw = invocation._encode('http', None, resp)
    assert raw[0] == invocation.KIND_HTTP and raw[1] == '201'
    assert ('X-A', 'b') in raw[2]
    assert raw[3] == (invocation.KINDS['bytes'], b'hi')


@pytest.mark.parametrize('value,pytype', [(b'raw', 'bytes'), (None, 'NoneType')])
def test_encode_unsupported_type_names_the_converter(invocation, value, pytype):
    # The official text names the converter class, also for None.
    with pytest.raises(TypeError) as err:
        invocation._encode('http', None, value)
    assert str(err.value) == (
        'unable to encode outgoing TypedData: unsupported type '
        '"<class \'azure.functions.http.HttpResponseConverter\'>" for Python '
        f'type "{pytype}"')


def test_cookies(invocation):
    resp = func.HttpResponse('x')
    resp.headers.add('Set-Cookie', 'a=b; Path=/p; Secure; Max-Age=5; '
                     'SameSite=Strict; Expires=Thu, 01 Jan 2026 00:00:00 GMT')
    raw = invocation._encode('http', None, resp)
    ((name, value, domain, path, expires, secure, http_only, same_site,
      max_age),) = raw[4]
    assert (name, value, domain, path) == ('a', 'b', '', '/p')
    assert expires == int(datetime.datetime(
        2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    assert (secure, http_only, same_site, max_age) == (True, False, 2, 5.0)


def test_cookie_unset_attributes_are_present_empty(invocation):
    # As the official worker: domain "", path "", secure and http_only false.
    resp = func.HttpResponse('x')
    resp.headers.add('Set-Cookie', 'plain=v')
    raw = invocation._encode('http', None, resp)
    assert raw[4] == [('plain', 'v', '', '', None, False, False, 0, None)]


def test_cookie_expires_invalid(invocation, caplog):
    assert invocation._cookie_expires('') is None
    with pytest.raises(ValueError) as err:
        invocation._cookie_expires('not a date')
    assert type(err.value).__name__ == 'ParserError'
    assert str(err.value) == 'Unknown string format: not a date'
    assert [(r.name, r.levelname, r.getMessage()) for r in caplog.records] == [
        ('root', 'ERROR', 'Can not parse value not a date of expires in the '
         'cookie due to invalid format.')]


def test_out_and_context(invocation):
    out = invocation.Out()
    assert out.get() is None
    out.set(3)
    assert out.get() == 3
    ctx = invocation.Context('inv', 'fn', '/dir',
                             invocation.TraceContext('tp', 'ts', {}), None)
    assert (ctx.invocation_id, ctx.function_name, ctx.function_directory) == \
        ('inv', 'fn', '/dir')
    assert ctx.trace_context.Traceparent == 'tp'


def test_apply_settings_sizes_the_c_pool(invocation, monkeypatch):
    import _azfunc_native as native
    monkeypatch.setenv('PYTHON_THREADPOOL_THREAD_COUNT', '3')
    invocation.apply_settings()
    assert native.thread_counts[-1] == 3


def test_runner_sync_outcomes(invocation, indexing):
    from azure.functions.meta import Datum

    def hello(req: func.HttpRequest) -> func.HttpResponse:
        if req.params.get('fail'):
            raise ValueError('asked to fail')
        return func.HttpResponse(f'hi {req.params.get("name")}')
    indexing.analyse(hello, 'hello', 'id-run', '/app', [
        indexing.Binding('req', 'httpTrigger', indexing.IN, 0),
        indexing.Binding('$return', 'http', indexing.OUT, 0)])
    runner, is_async, needs_md, name = invocation.runner('id-run')
    assert (is_async, name) == (False, 'hello')

    def request(**params):
        return Datum({'method': Datum('GET', 'string'),
                      'url': Datum('http://x/api/hello', 'string'),
                      'headers': {}, 'query': {k: Datum(v, 'string')
                                              for k, v in params.items()},
                      'params': {}, 'body': Datum(b'', 'bytes')}, 'http')
    status, outputs, ret = runner(object(), 'inv-1', {'req': request(name='x')},
                                  None, ('', '', {}), None)
    assert (status, outputs) == (invocation.END_OK, [])
    assert ret[0] == invocation.KIND_HTTP and ret[3][1] == b'hi x'
    status, message, stack = runner(object(), 'inv-2',
                                    {'req': request(fail='1')}, None,
                                    ('', '', {}), None)
    assert status == invocation.END_FAIL
    assert message == 'ValueError: asked to fail' and 'hello' in stack
    with pytest.raises(RuntimeError, match='is not loaded'):
        invocation.runner('no-such-id', 'nope')


def _responses():
    plain = func.HttpResponse(b'hello')
    text = func.HttpResponse('héllo', status_code=201, mimetype='text/html',
                             charset='latin-1', headers={'X-A': '1'})
    typed = func.HttpResponse(b'{}', headers={'Content-Type': 'application/json',
                                              'x-b': '2'})
    cookies = func.HttpResponse('c', mimetype='application/octet-stream')
    cookies.headers.add('Set-Cookie', 'a=1; Domain=example.com; Secure')
    cookies.headers.add('set-cookie', 'b=2; Path=/p; SameSite=Lax')
    cookies.headers.add('X-Dup', 'first')
    cookies.headers.add('X-Dup', 'second')
    empty = func.HttpResponse(status_code=204)
    return [plain, text, typed, cookies, empty]


@pytest.mark.parametrize('index', range(5))
def test_http_response_fast_path_matches_the_converter(invocation, index):
    import azure.functions.http as http
    fast = invocation._http_response_raw(_responses()[index])
    slow = invocation._datum_raw(http.HttpResponseConverter.encode(
        _responses()[index], expected_type=None))
    assert fast == slow


def test_encoder_takes_the_fast_path(invocation, monkeypatch):
    calls = []
    monkeypatch.setattr(invocation, '_http_response_raw',
                        lambda obj: calls.append(obj) or ('fast',))
    encode = invocation._encoder('http', func.HttpResponse)
    assert encode(func.HttpResponse('x')) == ('fast',)
    assert encode('text')[0] == invocation.KINDS['string']  # the converter
    assert len(calls) == 1
