"""The conversation of §3 between the host simulator and azfunc-worker, over h2c and TLS."""

import pytest

import azhost
from azhost import FAILURE, LOG_SYSTEM, SUCCESS, kind, pb

# Sent by the official worker on every init (host-protocol.md §3.3), all "true".
OFFICIAL_CAPABILITIES = ["RawHttpBodyBytes", "TypedDataCollection", "RpcHttpBodyOnly", "WorkerStatus",
                         "RpcHttpTriggerMetadataRemoved"]


def test_start_stream_is_first_with_worker_and_request_id(host):
    first = host.received[0]
    assert kind(first) == "start_stream"
    assert first.start_stream.worker_id == host.worker_id
    assert first.request_id == host.request_id


def test_init_response(host):
    resp = host.init()
    assert resp.result.status == SUCCESS, resp
    for cap in OFFICIAL_CAPABILITIES:
        assert resp.capabilities.get(cap) == "true", f"capability {cap} missing: {dict(resp.capabilities)}"
    md = resp.worker_metadata
    assert md.runtime_name == "python"
    assert md.runtime_version and md.worker_version and md.worker_bitness, md


def test_init_advertises_terminate_handling(host):
    # Terminate works (test_terminate_exits_zero_within_grace): the host sends it only if told.
    assert host.init().capabilities.get("HandlesWorkerTerminateMessage") == "true"


def test_init_advertises_shared_memory_transfer(host):
    assert host.init().capabilities.get("SharedMemoryDataTransfer") == "true"


def test_init_without_host_capabilities_or_directories(host):
    # The official worker's mock host sends only host_version (§8.1).
    host.send(worker_init_request=pb.WorkerInitRequest(host_version="4.28.0"))
    assert host.expect("worker_init_response").worker_init_response.result.status == SUCCESS


def test_status_probes_echo_fresh_request_ids(host):
    host.init()
    for _ in range(5):
        assert host.status() == pb.WorkerStatusResponse()
    # A burst of probes in flight at once: each reply matched by its own GUID.
    assert len(set(host.status_burst(50))) == 50


def test_status_before_init_is_answered(host):
    # The host may probe at any time after the stream is up.
    assert host.status() == pb.WorkerStatusResponse()


def test_metadata_without_function_app_uses_default_indexing(host):
    host.init()
    resp = host.metadata()
    assert resp.use_default_metadata_indexing
    assert resp.result.status == SUCCESS
    assert len(resp.function_metadata_results) == 0


def test_load_of_missing_function_fails_with_its_id(host, app_dir):
    host.init()
    fdir = app_dir / "missing"
    resp = host.load("fid-1", name="missing", directory=str(fdir), script_file=str(fdir / "__init__.py"),
                     entry_point="main")
    assert resp.function_id == "fid-1"
    assert resp.result.status == FAILURE
    assert resp.result.exception.message


def test_every_invocation_gets_exactly_one_response(host):
    host.init()
    invs = [host.start_invocation(f"unknown-{i % 3}") for i in range(100)]
    for inv in invs:
        r = inv.wait()
        assert r.invocation_id == inv.id
        assert r.result.status == FAILURE and r.result.exception.message, r
    host.status()  # a round trip after the last response: nothing more may follow
    assert sum(kind(m) == "invocation_response" for m in host.received) == len(invs)
    host.check()  # no duplicate or unknown invocation responses


def test_request_id_stamping(host):
    """§1.2: --requestId on everything, except the echoed status and metadata replies."""
    host.init()
    host.status()
    host.metadata()
    host.invoke("nope")
    host.send_raw(azhost.unknown_member(23))  # provokes a System log
    host.status()
    echoed = {}
    for m in host.received:
        if kind(m) in ("worker_status_response", "function_metadata_response"):
            echoed.setdefault(kind(m), []).append(m.request_id)
            assert m.request_id != host.request_id
        else:
            assert m.request_id == host.request_id, f"{kind(m)} stamped {m.request_id!r}"
    assert len(echoed["worker_status_response"]) == 2 and len(echoed["function_metadata_response"]) == 1
    host.check()  # metadata echo verified by the simulator


def test_logs_outside_invocations_are_system(host):
    host.init()
    host.send_raw(azhost.unknown_member(23))
    host.status()
    assert host.system_logs
    assert host.dropped_logs == [], "User logs without an executing invocation are dropped by the host"
    assert all(log.log_category == LOG_SYSTEM for log in host.system_logs)


def test_environment_reload(host, tmp_path):
    host.init()
    new_root = tmp_path / "specialized"
    new_root.mkdir()
    resp = host.reload_environment({"FUNCTIONS_WORKER_RUNTIME": "python", "SOME_SETTING": "1"}, new_root)
    assert resp.result.status == SUCCESS, resp
    assert resp.worker_metadata.runtime_name == "python"
    assert host.status() == pb.WorkerStatusResponse()
    assert host.metadata(new_root).use_default_metadata_indexing


def test_large_messages_stream(host):
    # 16 MiB in one message: flow-control windows must keep it moving.
    host.init()
    big = pb.ParameterBinding(name="req", data=pb.TypedData(bytes=b"\xab" * (16 << 20)))
    r = host.invoke("unknown", [big]).response
    assert r.result.status == FAILURE
    assert host.status() == pb.WorkerStatusResponse()


def test_terminate_drains_invocations_in_flight(make_host, worker_exe):
    # Ten rounds: before the worker waited for the host to end the call after terminate,
    # a grpcio host lost unread responses in about one run in four.
    for _ in range(10):
        host = make_host(worker_exe)
        host.init()
        invs = [host.start_invocation("unknown") for _ in range(20)]
        assert host.terminate() == 0
        for inv in invs:
            inv.wait()
        host.process.assert_no_crash()


@pytest.mark.parametrize("grace", [5, 0, None], ids=["5s", "0s", "unset"])
def test_terminate_exits_zero_within_grace(host, grace):
    host.init()
    host.status()
    assert host.terminate(grace_seconds=grace) == 0
    host.process.assert_no_crash()


def test_grpc_request_headers(app_dir, worker_exe):
    from rawh2 import RawHost

    with RawHost(app_dir, worker_exe) as raw:
        hd = raw.request_headers
        assert hd[":method"] == "POST" and hd[":scheme"] == "http"
        assert hd[":path"] == azhost.METHOD
        assert hd["content-type"].startswith("application/grpc")
        assert hd["te"] == "trailers"
        assert hd[":authority"]
        assert "grpc-encoding" not in hd or hd["grpc-encoding"] == "identity"
