"""OpenTelemetry through the host simulator (host-protocol.md §3.3, §7, §10 item 20): with
PYTHON_ENABLE_OPENTELEMETRY the worker advertises WorkerOpenTelemetryEnabled and a span the
function creates is a child of the host's span (the InvocationRequest's trace context).
App: tests/apps/otel_v2 (opentelemetry-sdk with an in-memory exporter)."""
import json
import shutil
from pathlib import Path

import pytest

import azhost
from azhost import pb

if not azhost.TEST_VENV:
    pytest.importorskip("opentelemetry.sdk", reason="opentelemetry-sdk (requirements-dev.txt)")

APPS = Path(__file__).resolve().parents[1] / "apps"
SUCCESS = 1
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACE = pb.RpcTraceContext(trace_parent=f"00-{TRACE_ID}-{PARENT_ID}-01", trace_state="vendor=x")


def host_for(tmp_path, make_host, worker_exe, env):
    app = tmp_path / "otel_v2"
    shutil.copytree(APPS / "otel_v2", app, ignore=shutil.ignore_patterns("__pycache__"))
    h = make_host(worker_exe, app_dir=app, env=env)
    init = h.init(function_app_directory=app)
    assert init.result.status == SUCCESS, init.result.exception.message
    assert azhost.TEST_PYTHON in (None, init.worker_metadata.runtime_version)  # AZF_TEST_PYTHON's
    md = h.metadata(function_app_directory=app)
    assert md.result.status == SUCCESS, md.result.exception.message
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS, load.result.exception.message
    return h, init, {f.name: f.function_id for f in md.function_metadata_results}


def span_of(h, function_id):
    req = pb.RpcHttp(method="GET", url="http://localhost/api/span")
    r = h.invoke(function_id, [pb.ParameterBinding(name="req", data=pb.TypedData(http=req))],
                 trace_context=TRACE).response
    assert r.result.status == SUCCESS, r.result.exception.message
    return json.loads(r.return_value.http.body.bytes)


@pytest.mark.parametrize("name", ["span", "aspan"])
def test_span_is_a_child_of_the_host_span(tmp_path, make_host, worker_exe, name):
    h, init, ids = host_for(tmp_path, make_host, worker_exe, {"PYTHON_ENABLE_OPENTELEMETRY": "true"})
    assert init.capabilities["WorkerOpenTelemetryEnabled"] == "true"
    got = span_of(h, ids[name])
    assert got["trace_id"] == TRACE_ID
    assert got["parent_span_id"] == PARENT_ID
    assert got["trace_parent"] == TRACE.trace_parent and got["trace_state"] == "vendor=x"
    # The next invocation does not inherit this one's context.
    again = span_of(h, ids[name])
    assert again["parent_span_id"] == PARENT_ID and again["span_id"] != got["span_id"]


def test_off_by_default(tmp_path, make_host, worker_exe):
    h, init, ids = host_for(tmp_path, make_host, worker_exe, {})
    assert "WorkerOpenTelemetryEnabled" not in init.capabilities
    got = span_of(h, ids["span"])
    assert got["trace_id"] != TRACE_ID and got["parent_span_id"] is None


def test_distro_missing_is_a_system_log(tmp_path, make_host, worker_exe):
    h, init, _ = host_for(tmp_path, make_host, worker_exe,
                          {"PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY": "true"})
    assert "WorkerOpenTelemetryEnabled" not in init.capabilities
    h.wait_for(lambda: any("azure-monitor-opentelemetry" in lg.message for lg in h.system_logs),
               "the System log about the missing distro")
