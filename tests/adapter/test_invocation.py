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
    assert invocation._generic_encode('s') == ('string', 's')
    assert invocation._generic_encode(bytearray(b'b')) == ('bytes', b'b')
    assert invocation._generic_encode({'a': 1}) == ('json', '{"a": 1}')
    assert invocation._generic_encode(7) == ('int', 7)
    assert invocation._generic_encode(1.5) == ('double', 1.5)
    assert invocation._generic_encode(None) is None
    with pytest.raises(NotImplementedError):
        invocation._generic_encode(object())


def test_generic_decode(invocation):
    from azure.functions.meta import Datum
    assert invocation._generic_decode(Datum('x', 'string')) == 'x'
    assert invocation._generic_decode(None) is None
    with pytest.raises(ValueError):
        invocation._generic_decode(Datum(1, 'int'))


def test_encode_http_response(invocation):
    resp = func.HttpResponse('hi', status_code=201, headers={'X-A': 'b'})
    raw = invocation._encode('http', None, resp)
    assert raw[0] == 'http' and raw[1] == '201'
    assert ('X-A', 'b') in raw[2]
    assert raw[3] == ('bytes', b'hi')


def test_encode_unsupported_type(invocation):
    with pytest.raises(TypeError) as err:
        invocation._encode('http', None, b'raw')
    assert 'unsupported type "http" for Python type "bytes"' in str(err.value)


def test_cookies(invocation):
    resp = func.HttpResponse('x')
    resp.headers.add('Set-Cookie', 'a=b; Path=/p; Secure; Max-Age=5; '
                     'SameSite=Strict; Expires=Thu, 01 Jan 2026 00:00:00 GMT')
    raw = invocation._encode('http', None, resp)
    ((name, value, domain, path, expires, secure, http_only, same_site,
      max_age),) = raw[4]
    assert (name, value, domain, path) == ('a', 'b', None, '/p')
    assert expires == int(datetime.datetime(
        2026, 1, 1, tzinfo=datetime.timezone.utc).timestamp())
    assert (secure, http_only, same_site, max_age) == (True, None, 2, 5.0)


def test_cookie_expires_invalid(invocation):
    assert invocation._cookie_expires('') is None
    with pytest.raises(TypeError):
        invocation._cookie_expires('not a date')


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
