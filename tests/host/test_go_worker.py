"""The Go-handler worker (examples/go-worker, built on bindings/go) through the host
simulator: the conversation azfunc-worker holds (init, worker-indexed metadata with raw
bindings, loads, invocations with outputs and return values, User logs before the
response, an error as a Failure, cancel). bindings/go's `go test` builds the example and
runs this file with AZF_GO_WORKER set; elsewhere it is skipped."""
import json
import os

import pytest

from azhost import pb

GO_WORKER = os.environ.get("AZF_GO_WORKER")
pytestmark = pytest.mark.skipif(not GO_WORKER, reason="AZF_GO_WORKER unset (run by bindings/go/test.sh)")
SUCCESS, FAILURE, CANCELLED = 1, 0, 2
USER = 0


def http(method="GET", url="http://localhost/api/x", query=None, params=None, body=None):
    req = pb.RpcHttp(method=method, url=url, query=query or {}, params=params or {},
                     headers={"Content-Type": "text/plain"})
    if body is not None:
        req.body.CopyFrom(pb.TypedData(string=body))
    return [pb.ParameterBinding(name="req", data=pb.TypedData(http=req))]


@pytest.fixture
def go_host(make_host, app_dir):
    """A Go worker after init, metadata and the loads → (host, metadata by name)."""
    h = make_host(GO_WORKER, app_dir=app_dir)
    init = h.init(function_app_directory=app_dir)
    assert init.result.status == SUCCESS, init.result.exception.message
    assert init.worker_metadata.runtime_name == "go"
    assert init.capabilities["HandlesInvocationCancelMessage"] == "true"
    md = h.metadata(function_app_directory=app_dir)
    assert md.result.status == SUCCESS, md.result.exception.message
    assert not md.use_default_metadata_indexing
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS, load.result.exception.message
    return h, {f.name: f for f in md.function_metadata_results}


def test_metadata_worker_indexed_with_raw_bindings(go_host):
    _, fns = go_host
    assert sorted(fns) == ["boom", "enqueue", "hello", "process", "wait"]
    hello = fns["hello"]
    assert hello.function_id and hello.properties["worker_indexed"] == "True"
    raw = [json.loads(b) for b in hello.raw_bindings]
    trigger = next(b for b in raw if b["type"] == "httpTrigger")
    assert trigger["name"] == "req" and trigger["route"] == "hello" and trigger["methods"] == ["GET", "POST"]
    assert hello.bindings["$return"].direction == 1  # out
    queue = [json.loads(b) for b in fns["process"].raw_bindings]
    assert {"type": "queueTrigger", "name": "msg", "queueName": "orders"}.items() <= queue[0].items()
    assert len({f.function_id for f in fns.values()}) == 5


def test_http_return_value_cookies_and_logs(go_host):
    h, fns = go_host
    inv = h.invoke(fns["hello"].function_id, http(query={"name": "gopher"}))
    r = inv.response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.http.status_code == "200"
    assert r.return_value.http.body.bytes == b"Hello, gopher"
    assert r.return_value.http.headers["Content-Type"] == "text/plain"
    cookie = r.return_value.http.cookies[0]
    assert (cookie.name, cookie.value, cookie.path.value, cookie.http_only.value) == ("seen", "gopher", "/", True)
    logs = [(lg.level, lg.message, lg.log_category, lg.invocation_id) for lg in inv.logs]
    assert logs == [(2, "hello gopher", USER, inv.id)]
    # The body when there is no query; a warning on the empty request.
    r = h.invoke(fns["hello"].function_id, http(method="POST", body="body-name")).response
    assert r.return_value.http.body.bytes == b"Hello, body-name"
    inv = h.invoke(fns["hello"].function_id, http())
    assert inv.response.return_value.http.status_code == "400"
    assert [(lg.level, lg.message) for lg in inv.logs] == [(2, "hello "), (3, "no name")]
    assert not h.dropped_logs


def test_go_error_is_a_failure(go_host):
    h, fns = go_host
    inv = h.invoke(fns["boom"].function_id, http())
    r = inv.response
    assert r.result.status == FAILURE
    assert r.result.exception.message == "errors.errorString: bad input"
    assert not r.HasField("return_value") and not r.output_data
    assert [lg.message for lg in inv.logs] == ["about to fail"]


def test_http_to_queue_output_and_route_params(go_host):
    h, fns = go_host
    r = h.invoke(fns["enqueue"].function_id,
                 http(method="POST", params={"id": "42"}, body="two apples")).response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.http.status_code == "202"
    assert r.return_value.http.body.bytes == b"queued 42"
    out = {o.name: o.data for o in r.output_data}
    assert json.loads(out["msg"].json) == {"id": "42", "body": "two apples"}


def test_queue_trigger_with_metadata_and_return(go_host):
    h, fns = go_host
    msg = [pb.ParameterBinding(name="msg", data=pb.TypedData(string='{"id": "7"}'))]
    inv = h.invoke(fns["process"].function_id, msg, trigger_metadata={"DequeueCount": pb.TypedData(json="2")})
    r = inv.response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.string == "done 7"
    assert [lg.message for lg in inv.logs] == ["processing order 7 (dequeue count 2)"]
    # A message that is not JSON: the handler's error is the Failure.
    bad = [pb.ParameterBinding(name="msg", data=pb.TypedData(string="nope"))]
    r = h.invoke(fns["process"].function_id, bad).response
    assert r.result.status == FAILURE
    assert r.result.exception.message.startswith("fmt.wrapError: not an order: ")


def test_concurrent_invocations_and_cancel(go_host):
    h, fns = go_host
    waiting = h.start_invocation(fns["wait"].function_id, http())
    h.wait_for(lambda: any(lg.message == "waiting" for lg in waiting.logs), "the function to start")
    # Each invocation runs in its own goroutine: others finish while one waits.
    assert h.invoke(fns["hello"].function_id, http(query={"name": "a"})).response.result.status == SUCCESS
    h.send(invocation_cancel=pb.InvocationCancel(invocation_id=waiting.id))
    assert waiting.wait().result.status == CANCELLED


def test_unknown_function_id(go_host):
    h, _ = go_host
    r = h.invoke("no-such-function", http()).response
    assert r.result.status == FAILURE
    assert "no-such-function" in r.result.exception.message
