"""`azfunc start` with OpenTelemetry (a W3C trace context per request, continuing the
client's traceparent) and HTTP streaming (HTTP functions of an app that imports
azurefunctions-extensions-http-fastapi are proxied to the app's own server, responses stream
back as produced). Apps: tests/apps/otel_v2, tests/apps/stream_v2."""

import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runner import WAIT, start  # noqa: E402,F401  (the fixture)

TEST_APPS = Path(__file__).resolve().parents[1] / "apps"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TP = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
# scripts/test.sh runs this file once per Python the build found, each with a venv of the
# app's packages (AZF_TEST_VENV): then nothing is skipped, and the venv's Python serves.
TEST_PYTHON = os.environ.get("AZF_TEST_PYTHON")
TEST_VENV = os.environ.get("AZF_TEST_VENV")


def has_app_package(module):
    return bool(TEST_VENV) or importlib.util.find_spec(module) is not None


def started(start, app_dir, env=None):
    r = start(app_dir, env=env)
    if TEST_VENV:  # the venv, and so its Python, serves the app
        assert f"Virtual environment: {TEST_VENV}" in r.output, r.output
        assert TEST_PYTHON is None or f"Python {TEST_PYTHON}." in r.output, r.output
    return r


def app(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(TEST_APPS / name, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


@pytest.mark.parametrize("function", ["span", "aspan"])
def test_span_continues_the_client_trace(start, tmp_path, function):
    if not has_app_package("opentelemetry.sdk"):
        pytest.skip("opentelemetry-sdk (requirements-dev.txt)")
    r = started(start, app(tmp_path, "otel_v2"), env={"PYTHON_ENABLE_OPENTELEMETRY": "1"})
    status, body, _ = r.request(f"/api/{function}", headers={
        "traceparent": f"00-{TRACE_ID}-{PARENT_ID}-01", "tracestate": "vendor=x"})
    assert status == 200, body
    got = json.loads(body)
    trace_id, runner_span, flags = TP.fullmatch(got["trace_parent"]).groups()
    assert (trace_id, flags) == (TRACE_ID, "01")
    assert runner_span != PARENT_ID  # the runner's own span, child of the client's
    assert got["trace_state"] == "vendor=x"
    assert got["trace_id"] == TRACE_ID and got["parent_span_id"] == runner_span

    # No incoming traceparent: a new trace, and the span still nests under it.
    got = json.loads(r.request(f"/api/{function}")[1])
    trace_id, runner_span, _ = TP.fullmatch(got["trace_parent"]).groups()
    assert trace_id != TRACE_ID and got["trace_state"] == ""
    assert got["trace_id"] == trace_id and got["parent_span_id"] == runner_span


@pytest.fixture
def streaming(start, tmp_path):
    if not has_app_package("azurefunctions.extensions.http.fastapi"):
        pytest.skip("azurefunctions-extensions-http-fastapi (requirements-dev.txt)")
    r = started(start, app(tmp_path, "stream_v2"))
    r.wait_for("HTTP streaming: HTTP functions are served by the app at http://127.0.0.1:")
    return r


def test_streamed_response_and_route_params(streaming):
    r = streaming
    status, body, _ = r.request("/api/chunks/4")
    assert (status, body) == (200, b"chunk 0\nchunk 1\nchunk 2\nchunk 3\n")
    status, body, _ = r.request("/api/params/a%20b/7?q=1")
    assert status == 200
    assert json.loads(body) == {"path_params": {"name": "a b", "n": "7"}, "query": {"q": "1"},
                                "method": "GET"}
    assert r.request("/api/chunks/x")[0] == 404  # the runner's route constraints still apply
    r.wait_for("Executed 'Functions.chunks' (Succeeded", 1)
    r.wait_for("streaming 4 chunks")


def test_sse_reaches_the_client_as_produced(streaming, tmp_path):
    r = streaming
    marker = tmp_path / "more"
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=WAIT)
    conn.request("GET", f"/api/sse?marker={marker}")
    resp = conn.getresponse()
    assert resp.status == 200
    assert resp.getheader("Content-Type").startswith("text/event-stream")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.readline().startswith(b"data: event 0")
    # The function is still producing: its invocation has not ended yet.
    assert "Executed 'Functions.sse'" not in r.output
    marker.touch()
    assert resp.read().count(b"data: event") == 2
    conn.close()
    r.wait_for("Executed 'Functions.sse' (Succeeded")


def test_upload_and_failures(streaming):
    r = streaming
    body = bytes(range(256)) * 4096  # 1 MiB
    status, got, _ = r.request("/api/upload", "POST", body)
    assert status == 200
    got = json.loads(got)
    assert got["size"] == len(body) and got["sha256"] == hashlib.sha256(body).hexdigest()
    assert r.request("/api/boom")[0] == 500
    r.wait_for("Executed 'Functions.boom' (Failed")
    r.wait_for("ValueError: stream boom")


def test_client_goes_away(streaming):
    r = streaming
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=WAIT)
    conn.request("GET", "/api/endless")
    resp = conn.getresponse()
    assert resp.readline() == b"first\n"
    conn.sock.shutdown(2)
    conn.close()
    r.wait_for("Executed 'Functions.endless' (Failed")
    r.wait_for("went away")
    assert r.request("/api/chunks/1")[:2] == (200, b"chunk 0\n")  # still serving
    assert r.stop() == 0, r.output
