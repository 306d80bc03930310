"""Invocations through the host simulator against azfunc-worker (host-protocol.md §3.6-§3.9,
§6.4): return values, User logs before the response, failures with "<Type>: <message>" and
frames, unknown ids, cancel, terminate drain, environment reload. Apps: tests/apps/worker_v2_invoke
(v2) and tests/apps/worker_v1_invoke (v1, function.json)."""
import re
import shutil
import sys
from pathlib import Path

import pytest

import azhost
from azhost import pb

APPS = Path(__file__).resolve().parents[1] / "apps"
SUCCESS, FAILURE, CANCELLED = 1, 0, 2
USER, SYSTEM = 0, 1


def copy_app(tmp_path, name):
    dst = tmp_path / name
    shutil.copytree(APPS / name, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def http(method="GET", url="http://localhost/api/x", query=None):
    req = pb.RpcHttp(method=method, url=url, query=query or {})
    return [pb.ParameterBinding(name="req", data=pb.TypedData(http=req))]


def v2_host(tmp_path, make_host, worker_exe, reload_env=None):
    """A worker serving worker_v2_invoke: init, (env reload), metadata, loads → (host, ids by name)."""
    app = copy_app(tmp_path, "worker_v2_invoke")
    h = make_host(worker_exe, app_dir=app)
    assert h.init(function_app_directory=app).result.status == SUCCESS
    if reload_env is not None:
        resp = h.reload_environment(reload_env, function_app_directory=app)
        assert resp.result.status == SUCCESS, resp.result.exception.message
        assert dict(resp.capabilities) == h.capabilities  # merged: nothing changes
        assert resp.worker_metadata.runtime_name == "python"
    md = h.metadata(function_app_directory=app)
    assert md.result.status == SUCCESS, md.result.exception.message
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS, load.result.exception.message
    return h, {f.name: f.function_id for f in md.function_metadata_results}


def test_capabilities_and_runtime_version(tmp_path, make_host, worker_exe):
    h, _ = v2_host(tmp_path, make_host, worker_exe)
    init = [m for m in h.received if azhost.kind(m) == "worker_init_response"][0].worker_init_response
    assert init.capabilities["HandlesInvocationCancelMessage"] == "true"
    assert init.capabilities["HandlesWorkerTerminateMessage"] == "true"
    # The Python the adapter runs: the test venv's (or AZF_TEST_PYTHON's).
    assert init.worker_metadata.runtime_version == (azhost.TEST_PYTHON or f"{sys.version_info.major}.{sys.version_info.minor}")
    # The worker's own logs are System logs without an invocation id.
    assert any(lg.category == "azfunc.worker" and "WorkerInitRequest" in lg.message for lg in h.system_logs)
    assert all(lg.log_category == SYSTEM and not lg.invocation_id for lg in h.system_logs)


def test_v2_hello_return_value_and_logs(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    inv = h.invoke(ids["hello"], http(query={"name": "x"}))
    r = inv.response
    assert r.invocation_id == inv.id
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.http.status_code == "200"
    assert r.return_value.http.body.bytes == b"Hello, x"
    # User logs reached the host while the invocation was executing: before its response.
    logs = [(lg.category, lg.level, lg.message, lg.log_category, lg.invocation_id) for lg in inv.logs]
    assert ("root", 2, "hello x", USER, inv.id) in logs
    assert ("my.logger", 3, "careful", USER, inv.id) in logs
    assert not h.dropped_logs


def test_system_logs_from_python(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    assert any(lg.message == "worker_v2_invoke imported" and lg.category == "root" for lg in h.system_logs)
    inv = h.invoke(ids["syslog"], http())
    assert inv.response.result.status == SUCCESS
    # Loggers named azure_functions_worker* are the worker's own: System, never User.
    assert not [lg for lg in inv.logs if lg.message == "a worker note"]
    h.wait_for(lambda: any(lg.message == "a worker note" for lg in h.system_logs), "the System log")
    assert all(lg.log_category == SYSTEM and not lg.invocation_id for lg in h.system_logs)


def test_v2_failure_type_message_and_frames(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    r = h.invoke(ids["boom"], http()).response
    assert r.result.status == FAILURE
    assert r.result.exception.message == "ValueError: bad input"
    assert re.search(r'File ".*/function_app\.py", line \d+, in boom', r.result.exception.stack_trace)
    assert not r.result.exception.stack_trace.startswith("Traceback")
    assert not r.HasField("return_value") and not r.output_data


def test_unknown_function_id(tmp_path, make_host, worker_exe):
    h, _ = v2_host(tmp_path, make_host, worker_exe)
    r = h.invoke("no-such-function", http()).response
    assert r.result.status == FAILURE
    assert "no-such-function" in r.result.exception.message


def test_v1_hello(tmp_path, make_host, worker_exe):
    app = copy_app(tmp_path, "worker_v1_invoke")
    h = make_host(worker_exe, app_dir=app)
    h.init(function_app_directory=app)
    md = h.metadata(function_app_directory=app)
    assert md.use_default_metadata_indexing
    assert h.load_function_json("Hello", function_id="v1-hello").result.status == SUCCESS
    inv = h.invoke("v1-hello", http(query={"name": "y"}))
    r = inv.response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.http.body.bytes == b"Hello v1, y"
    assert [lg.message for lg in inv.logs if lg.log_category == USER] == ["v1 hello y"]
    r = h.invoke("v1-hello", http(query={"name": "boom"})).response
    assert r.result.status == FAILURE
    assert r.result.exception.message == "KeyError: 'boom'"
    assert re.search(r'Hello/__init__\.py", line \d+, in main', r.result.exception.stack_trace)


def test_cancel_async_invocation(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    inv = h.start_invocation(ids["forever"], http())
    h.wait_for(lambda: any(lg.message == "waiting" for lg in inv.logs), "the function to start")
    h.send(invocation_cancel=pb.InvocationCancel(invocation_id=inv.id))
    r = inv.wait()
    assert r.result.status == CANCELLED
    # Cancelling something finished or unknown is harmless; the worker still answers.
    h.send(invocation_cancel=pb.InvocationCancel(invocation_id=inv.id))
    h.send(invocation_cancel=pb.InvocationCancel(invocation_id="unknown"))
    assert h.status() is not None


def test_terminate_drains_a_blocking_function(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    marker = tmp_path / "release"
    inv = h.start_invocation(ids["block"], http(query={"marker": str(marker)}))
    h.wait_for(lambda: any(lg.message == "blocking" for lg in inv.logs), "the function to start")
    h.send(worker_terminate=pb.WorkerTerminate(grace_period=pb.Duration(seconds=30)))
    h.wait_for(lambda: any("WorkerTerminate" in lg.message for lg in h.system_logs), "the terminate")
    late = h.start_invocation(ids["hello"], http())  # no new work once terminating
    marker.touch()  # the function ends during the drain
    r = inv.wait()
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.string == "done"
    assert late.wait().result.status == FAILURE
    assert h.process.wait(h.timeout) == 0


def test_terminate_answers_what_does_not_finish(tmp_path, make_host, worker_exe):
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    marker = tmp_path / "never"
    inv = h.start_invocation(ids["block"], http(query={"marker": str(marker)}))
    h.wait_for(lambda: any(lg.message == "blocking" for lg in inv.logs), "the function to start")
    assert h.terminate(grace_seconds=2) == 0
    r = inv.wait()
    assert r.result.status == FAILURE
    assert r.result.exception.message.startswith("TimeoutError: ")


def test_stream_end_answers_running_invocations(tmp_path, make_host, worker_exe):
    """The host ends the stream with an invocation running: the worker completes it (the
    response has nowhere to go), exits cleanly, and nothing leaks (ASan build)."""
    h, ids = v2_host(tmp_path, make_host, worker_exe)
    inv = h.start_invocation(ids["forever"], http())
    h.wait_for(lambda: any(lg.message == "waiting" for lg in inv.logs), "the function to start")
    h.close()
    assert h.process.returncode == 0


def test_environment_reload_changes_os_environ(tmp_path, make_host, worker_exe):
    env = {"AZF_WORKER_TEST_SETTING": "specialized", "FUNCTIONS_WORKER_RUNTIME": "python"}
    h, ids = v2_host(tmp_path, make_host, worker_exe, reload_env=env)
    r = h.invoke(ids["setting"], http()).response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.string == "specialized"


def test_environment_reload_replaces_the_environment(tmp_path, make_host, worker_exe):
    # os.environ.clear() first (§3.8, §10.17): a variable missing from the map is gone.
    h, ids = v2_host(tmp_path, make_host, worker_exe, reload_env={"OTHER": "1"})
    r = h.invoke(ids["setting"], http()).response
    assert r.return_value.string == "unset"


def test_status_answered_while_a_load_blocks(tmp_path, make_host, worker_exe):
    """Loads run on the worker's app thread: a load stuck in user code does not stop the I/O
    thread from answering status probes (nor invocations of loaded functions)."""
    app = copy_app(tmp_path, "worker_v1_slow")
    marker = tmp_path / "let-go"
    h = make_host(worker_exe, app_dir=app, env={"AZF_WORKER_TEST_MARKER": str(marker)})
    h.init(function_app_directory=app)
    h.send(function_load_request=pb.FunctionLoadRequest(
        function_id="slow", metadata=azhost.function_json_metadata(app, "Slow")))
    h.status()  # answered while the import is still blocked
    assert not [m for m in h.received if azhost.kind(m) == "function_load_response"]
    marker.touch()
    load = h.expect("function_load_response").function_load_response
    assert load.result.status == SUCCESS, load.result.exception.message
    assert h.invoke("slow", http()).response.return_value.string == "loaded"
