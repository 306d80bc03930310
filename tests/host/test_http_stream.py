"""HTTP streaming through the host simulator (host-protocol.md §3.3, §3.8, §9): the worker
advertises HttpUri and RequiresRouteParameters once its server listens; the simulator proxies
the HTTP request like the host (httpproxy.py: x-ms-invocation-id, 10 connect attempts) and
sends the InvocationRequest with only the route parameters, in either order. App:
tests/apps/stream_v2 (azurefunctions-extensions-http-fastapi)."""
import concurrent.futures
import hashlib
import importlib.util
import json
import re
import shutil
import socket
from pathlib import Path

import pytest

import azhost
import httpproxy
from azhost import pb

# Looked up, not imported: importing it would register it in this process's
# azurefunctions-extensions-base, which other suites' in-process adapter tests share.
if not azhost.TEST_VENV and importlib.util.find_spec("azurefunctions.extensions.http.fastapi") is None:
    pytest.skip("azurefunctions-extensions-http-fastapi (requirements-dev.txt)",
                allow_module_level=True)

APPS = Path(__file__).resolve().parents[1] / "apps"
SUCCESS, FAILURE = 1, 0
# ASan builds: pydantic-core (FastAPI) keeps allocations for the process's life.
LSAN = {"LSAN_OPTIONS": f"suppressions={APPS.parent / 'python' / 'lsan.supp'}:print_suppressions=0"}
ENV = {"PYTHON_ENABLE_INIT_INDEXING": "1", "AZF_HTTP_PROXY_TIMEOUT_SECONDS": "3", **LSAN}


def copy_app(tmp_path, name="stream_v2"):
    dst = tmp_path / name
    shutil.copytree(APPS / name, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def route_params(**params):
    """The InvocationRequest input of a streaming worker: an RpcHttp with only params."""
    return [pb.ParameterBinding(name="req", data=pb.TypedData(http=pb.RpcHttp(params=params)))]


@pytest.fixture
def pool():
    with concurrent.futures.ThreadPoolExecutor(4) as p:
        yield p


@pytest.fixture
def stream(tmp_path, make_host, worker_exe):
    """A worker serving stream_v2 with init indexing: (host, HttpUri, function ids by name)."""
    app = copy_app(tmp_path)
    h = make_host(worker_exe, app_dir=app, env=ENV)
    init = h.init(function_app_directory=app)
    assert init.result.status == SUCCESS, init.result.exception.message
    assert azhost.TEST_PYTHON in (None, init.worker_metadata.runtime_version)  # AZF_TEST_PYTHON's
    uri = init.capabilities["HttpUri"]
    md = h.metadata(function_app_directory=app)
    assert md.result.status == SUCCESS, md.result.exception.message
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS, load.result.exception.message
    return h, uri, {f.name: f.function_id for f in md.function_metadata_results}


def test_capabilities_once_listening(stream):
    h, uri, ids = stream
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", uri)
    assert h.capabilities["RequiresRouteParameters"] == "true"
    # It listens: a connection succeeds at the first attempt.
    conn, attempts = httpproxy.connect(uri)
    conn.close()
    assert attempts == 1
    assert set(ids) >= {"chunks", "upload", "params", "boom", "endless", "yearly"}


def test_request_first(stream, pool):
    h, uri, ids = stream
    inv_id = azhost.new_id()
    conn = httpproxy.send(uri, "GET", "/api/chunks/5", inv_id)  # the host forwards first
    answer = pool.submit(lambda: conn.getresponse())
    inv = h.start_invocation(ids["chunks"], route_params(count="5"), invocation_id=inv_id)
    r = answer.result(30)
    assert r.status == 200
    assert r.read() == b"".join(f"chunk {i}\n".encode() for i in range(5))
    resp = inv.wait()
    assert resp.result.status == SUCCESS, resp.result.exception.message
    assert not resp.HasField("return_value") and not resp.output_data
    # The function's log reached the host as a User log of the invocation.
    assert any(lg.message == "streaming 5 chunks" for lg in inv.logs)


def test_invocation_first_and_route_params(stream):
    h, uri, ids = stream
    inv = h.start_invocation(ids["params"], route_params(name="x y", n="3"))
    status, _, body = httpproxy.forward(uri, "GET", "/api/params/x%20y/3?q=1", inv.id)
    assert status == 200
    assert json.loads(body) == {"path_params": {"name": "x y", "n": "3"}, "query": {"q": "1"},
                                "method": "GET"}
    assert inv.wait().result.status == SUCCESS


def test_response_streams_before_the_invocation_ends(stream, tmp_path):
    """The first server-sent event reaches the client while the function still produces."""
    h, uri, ids = stream
    marker = tmp_path / "more"
    inv = h.start_invocation(ids["sse"], route_params())
    conn = httpproxy.send(uri, "GET", f"/api/sse?marker={marker}", inv.id)
    r = conn.getresponse()
    assert r.getheader("content-type").startswith("text/event-stream")
    assert r.getheader("transfer-encoding") == "chunked"
    assert r.readline().startswith(b"data: event 0")
    assert inv.response is None  # still streaming: the invocation is open
    marker.touch()
    rest = r.read()
    assert rest.count(b"data: event") == 2
    assert inv.wait().result.status == SUCCESS
    conn.close()


def test_request_body_streams_in(stream, pool):
    h, uri, ids = stream
    pieces = [bytes([i]) * 65536 for i in range(128)]  # 8 MiB, sent chunked
    inv = h.start_invocation(ids["upload"], route_params())
    status, _, body = httpproxy.forward(uri, "POST", "/api/upload", inv.id, body=iter(pieces))
    assert status == 200
    got = json.loads(body)
    assert got["size"] == 8 * 1024 * 1024
    assert got["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()
    assert got["pieces"] > 1  # it arrived in pieces, not as one buffer
    assert inv.wait().result.status == SUCCESS


def test_function_raises(stream):
    h, uri, ids = stream
    inv = h.start_invocation(ids["boom"], route_params())
    status, _, _ = httpproxy.forward(uri, "GET", "/api/boom", inv.id)
    assert status == 500
    r = inv.wait()
    assert r.result.status == FAILURE
    assert r.result.exception.message == "ValueError: stream boom"
    assert re.search(r'function_app\.py", line \d+, in boom', r.result.exception.stack_trace)


def test_missing_header(stream):
    h, uri, ids = stream
    status, _, _ = httpproxy.forward(uri, "GET", "/api/chunks/1")
    assert status == 500
    # The worker goes on serving.
    inv = h.start_invocation(ids["chunks"], route_params(count="1"))
    assert httpproxy.forward(uri, "GET", "/api/chunks/1", inv.id)[2] == b"chunk 0\n"
    assert inv.wait().result.status == SUCCESS


def test_request_never_arrives(stream):
    h, uri, ids = stream
    r = h.invoke(ids["chunks"], route_params(count="1")).response
    assert r.result.status == FAILURE
    assert "did not arrive" in r.result.exception.message


def test_connect_retries_then_fails(stream):
    """The host's proxy gives up after 10 connection attempts; the invocation it was
    forwarding for then fails in the worker, which goes on serving."""
    h, uri, ids = stream
    inv = h.start_invocation(ids["chunks"], route_params(count="1"))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))  # bound and never listening: held, and refused
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
        with pytest.raises(httpproxy.ProxyError) as err:
            httpproxy.forward(closed, "GET", "/api/chunks/1", inv.id)
    assert err.value.attempts == 10
    assert inv.wait().result.status == FAILURE
    ok = h.start_invocation(ids["chunks"], route_params(count="2"))
    assert httpproxy.forward(uri, "GET", "/api/chunks/2", ok.id)[0] == 200
    assert ok.wait().result.status == SUCCESS


def test_client_goes_away(stream):
    h, uri, ids = stream
    inv = h.start_invocation(ids["endless"], route_params())
    conn = httpproxy.send(uri, "GET", "/api/endless", inv.id)
    r = conn.getresponse()
    assert r.readline() == b"first\n"
    conn.sock.shutdown(2)
    conn.close()
    resp = inv.wait()
    assert resp.result.status == FAILURE
    assert "went away" in resp.result.exception.message


def test_non_http_function_unchanged(stream):
    h, uri, ids = stream
    timer = pb.TypedData(json=json.dumps({"Schedule": {}, "IsPastDue": False}))
    r = h.invoke(ids["yearly"], [pb.ParameterBinding(name="timer", data=timer)]).response
    assert r.result.status == SUCCESS, r.result.exception.message


def test_without_init_indexing_no_server(tmp_path, make_host, worker_exe):
    """Init indexing is opt-in before Python 3.13 and always on from 3.13 (§9)."""
    app = copy_app(tmp_path)
    h = make_host(worker_exe, app_dir=app, env=LSAN)
    init = h.init(function_app_directory=app)
    assert init.result.status == SUCCESS
    version = tuple(int(n) for n in init.worker_metadata.runtime_version.split("."))
    assert ("HttpUri" in init.capabilities) == (version >= (3, 13))


def test_env_reload_starts_the_server(tmp_path, make_host, worker_exe, app_dir):
    """A placeholder worker (empty app) is specialised: indexing and the server start at reload."""
    app = copy_app(tmp_path)
    h = make_host(worker_exe, app_dir=app_dir, env=LSAN)
    assert "HttpUri" not in h.init(function_app_directory=app_dir).capabilities
    env = {k: v for k, v in azhost.host_env(app, app).items()}
    env.update(ENV)
    resp = h.reload_environment(env, function_app_directory=app)
    assert resp.result.status == SUCCESS, resp.result.exception.message
    uri = resp.capabilities["HttpUri"]
    assert resp.capabilities["RequiresRouteParameters"] == "true"
    md = h.metadata(function_app_directory=app)
    ids = {f.name: f.function_id for f in md.function_metadata_results}
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS
    inv = h.start_invocation(ids["chunks"], route_params(count="2"))
    assert httpproxy.forward(uri, "GET", "/api/chunks/2", inv.id)[2] == b"chunk 0\nchunk 1\n"
    assert inv.wait().result.status == SUCCESS


def test_init_indexing_error_is_reported_at_metadata(tmp_path, make_host, worker_exe):
    """Init indexing keeps an indexing error for the metadata request (host-protocol §3.3)."""
    app = copy_app(tmp_path, "v2_syntax_error")
    h = make_host(worker_exe, app_dir=app, env=ENV)
    init = h.init(function_app_directory=app)
    assert init.result.status == SUCCESS
    assert "HttpUri" not in init.capabilities
    md = h.metadata(function_app_directory=app)
    assert md.result.status == FAILURE
    assert re.match(r"SyntaxError: expected .:. \(function_app\.py, line 7\)$",
                    md.result.exception.message)


def test_init_indexing_without_extension(tmp_path, make_host, worker_exe):
    """A plain v2 app indexed at init: no server, invocations through gRPC as always."""
    app = copy_app(tmp_path, "worker_v2_invoke")
    h = make_host(worker_exe, app_dir=app, env=ENV)
    init = h.init(function_app_directory=app)
    assert init.result.status == SUCCESS and "HttpUri" not in init.capabilities
    md = h.metadata(function_app_directory=app)
    ids = {f.name: f.function_id for f in md.function_metadata_results}
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS
    req = pb.RpcHttp(method="GET", url="http://localhost/api/hello", query={"name": "i"})
    r = h.invoke(ids["hello"], [pb.ParameterBinding(name="req", data=pb.TypedData(http=req))]).response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.http.body.bytes == b"Hello, i"


def test_server_that_cannot_start_fails_the_init(tmp_path, make_host, worker_exe):
    """HttpUri is advertised only once the server listens; if it cannot start, the
    WorkerInitResponse is a Failure that says why (not an init timeout)."""
    app = copy_app(tmp_path, "stream_server_fails")
    h = make_host(worker_exe, app_dir=app, env=ENV)
    init = h.init(function_app_directory=app)
    assert init.result.status == FAILURE
    assert init.result.exception.message.startswith("HttpServerInitError: ")
    assert "address unavailable for this test" in init.result.exception.message
    assert "HttpUri" not in init.capabilities
