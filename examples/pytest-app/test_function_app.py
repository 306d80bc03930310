"""Unit tests that call the functions the way the worker will: the request
goes in as the host's RpcHttp, through azure.functions' converters, Out and
the return value come back as the host receives them."""
import json
import pathlib

import azure.functions as func
import pytest

from azfunc.app import App


@pytest.fixture(scope="module")
def app():
    with App(pathlib.Path(__file__).parent) as opened:
        yield opened


def test_indexed(app):
    greet = app.functions["greet"]
    assert greet.trigger_type == "httpTrigger" and greet.route == "greet/{name}"
    assert greet.binding("audit")["type"] == "queue"


def test_greet(app):
    result = app.invoke("greet", req={"route_params": {"name": "ada"}, "query": {"style": "loud"}})
    assert result.ok
    resp = result.return_value
    assert resp.status_code == 200 and resp.get_body() == b"HELLO, ADA!"
    assert resp.headers["x-style"] == "loud"
    assert json.loads(result.outputs["audit"]) == {"name": "ada", "style": "loud"}
    assert ("INFO", "root", "greeting ada") in result.logs


def test_sum_with_an_sdk_request(app):
    req = func.HttpRequest("POST", "http://localhost/api/sum", body=b'{"numbers": [1, 2, 3]}',
                           headers={"content-type": "application/json"})
    resp = app.call("total", req=req)
    assert json.loads(resp.get_body()) == {"sum": 6}
    assert resp.mimetype == "application/json"


def test_sum_rejects_bad_json(app):
    assert app.call("total", req={"method": "POST", "body": "nope"}).status_code == 400
