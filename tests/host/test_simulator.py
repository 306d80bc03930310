"""Self-test of the host simulator against fake_worker.py (a grpcio worker), no azfunc-worker needed."""

import os

import pytest

import azhost
from azhost import pb
from fake_worker import COMMAND as FAKE_WORKER
from rawh2 import RawHost


@pytest.mark.parametrize("transport", ["h2c", "tls"])
def test_simulator_conversation(make_host, transport, request):
    tls = request.getfixturevalue("tls") if transport == "tls" else None
    h = make_host(FAKE_WORKER, tls=tls)
    assert h.received[0].start_stream.worker_id == h.worker_id
    assert h.init().result.status == azhost.SUCCESS
    assert h.metadata().use_default_metadata_indexing
    assert h.status() == pb.WorkerStatusResponse()
    assert h.invoke("f").response.result.status == azhost.FAILURE
    assert h.terminate() == 0


def test_simulator_rejects_unknown_worker_id(make_host):
    h = make_host(FAKE_WORKER, start=False, check=False, env={"FAKE_WORKER_MODE": "wrong-id"})
    h.start(wait=False)
    with pytest.raises(azhost.HostError, match="worker exited"):
        h.wait_connected()
    assert not h.connected
    assert any("stream rejected" in e for e in h.errors)
    assert "INVALID_ARGUMENT" in "\n".join(h.process.stderr)


def test_simulator_notices_a_status_reply_without_the_echo(make_host):
    h = make_host(FAKE_WORKER, check=False, env={"FAKE_WORKER_MODE": "no-echo"})
    h.send(request_id=azhost.new_id(), worker_status_request=pb.WorkerStatusRequest())
    h.wait_for(lambda: h.errors, "the host to notice")
    assert "matches no probe" in h.errors[0]


def test_simulator_requires_init(make_host):
    h = make_host(FAKE_WORKER)
    with pytest.raises(azhost.HostError, match="after a successful WorkerInitResponse"):
        h.metadata()


def test_simulator_command_line_and_environment(make_host, app_dir):
    h = make_host(FAKE_WORKER)
    argv = h.process.argv[len(FAKE_WORKER):]
    p, w, r, m = str(h.port), h.worker_id, h.request_id, str(azhost.INT_MAX)
    assert argv == ["--host", "127.0.0.1", "--port", p, "--workerId", w, "--requestId", r,
                    "--grpcMaxMessageLength", m, "--functions-uri", f"http://127.0.0.1:{p}/",
                    "--functions-worker-id", w, "--functions-request-id", r,
                    "--functions-grpc-max-message-length", m]
    env = open(f"/proc/{h.process.proc.pid}/environ", "rb").read().split(b"\0")
    env = dict(e.decode().split("=", 1) for e in env if e)
    assert env["FUNCTIONS_APPLICATION_DIRECTORY"] == str(app_dir)
    assert env["FUNCTIONS_WORKER_DIRECTORY"]
    assert env["FUNCTIONS_WORKER_RUNTIME_VERSION"]
    assert env.get("PYTHON_THREADPOOL_THREAD_COUNT") is not None
    assert os.readlink(f"/proc/{h.process.proc.pid}/cwd") == str(app_dir)


def test_raw_peer_round_trip_and_back_pressure(app_dir):
    with RawHost(app_dir, FAKE_WORKER, initial_window=1024) as raw:
        assert raw.request_headers[":path"] == azhost.METHOD
        raw.pause_reading()
        rids = [raw.status() for _ in range(200)]
        raw.wait_for(lambda: raw.received_bytes > 1024, "the first window's worth")
        assert len(raw.status_replies()) < len(rids)
        raw.resume_reading()
        raw.wait_for(lambda: len(raw.status_replies()) == len(rids), "all status replies")
        assert raw.status_replies() == rids
        assert raw.errors == []


def test_simulator_terminate_drain_loses_nothing_when_the_worker_waits(make_host):
    # The fake worker half-closes and waits for the host to end the call: every reply arrives.
    # (Contrast: test_terminate_drains_invocations_in_flight.)
    for _ in range(5):
        h = make_host(FAKE_WORKER)
        h.init()
        invs = [h.start_invocation("f") for _ in range(20)]
        assert h.terminate() == 0
        for inv in invs:
            inv.wait()


def test_simulator_routes_user_logs_to_their_invocation(make_host):
    h = make_host(FAKE_WORKER)
    h.init()
    inv = h.invoke("log")
    h.status()
    assert [log.message for log in inv.logs] == ["hi"]
    assert [log.invocation_id for log in h.dropped_logs] == [inv.id]  # sent after the response


def test_host_built_load_metadata(tmp_path):
    f = tmp_path / "HttpTrigger"
    f.mkdir()
    (f / "__init__.py").write_text("def main(req): pass\n")
    (f / "function.json").write_text('{"scriptFile": "__init__.py", "bindings": ['
                                     '{"type": "httpTrigger", "direction": "in", "name": "req"},'
                                     '{"type": "http", "direction": "out", "name": "$return"},'
                                     '{"type": "blob", "direction": "in", "name": "b", "dataType": "binary"}]}')
    md = azhost.function_json_metadata(tmp_path, "HttpTrigger")
    assert md.name == "HttpTrigger" and md.directory == str(f) and md.script_file == str(f / "__init__.py")
    assert md.entry_point == ""
    assert md.bindings["$return"].direction == pb.BindingInfo.Direction.Value("out")
    assert md.bindings["b"].data_type == pb.BindingInfo.DataType.Value("binary")

    indexed = pb.RpcFunctionMetadata(
        name="f", function_id="id", directory="/app", script_file="function_app.py", entry_point="f",
        language="python", properties={"worker_indexed": "True"},
        raw_bindings=['{"direction": "IN", "dataType": "UNDEFINED", "type": "httpTrigger", "name": "req"}',
                      '{"direction": "OUT", "type": "http", "name": "$return"}'])
    load = azhost.indexed_load_metadata(indexed)
    assert load.properties["worker_indexed"] == "True" and not load.raw_bindings and not load.function_id
    assert load.bindings["req"].type == "httpTrigger" and load.bindings["$return"].direction == 1
