"""Faults that must leave a clear error and no crash (issue 3)."""

import grpc
import pytest

import azhost
from azhost import LOG_SYSTEM, SUCCESS, kind, new_id, pb
from rawh2 import RawHost, grpc_frame

CLOSED = r"stream|connection|closed|ended|reset|goaway|eof"


def init(raw):
    raw.send_message(pb.StreamingMessage(worker_init_request=pb.WorkerInitRequest(host_version="4.1037.0.0")))
    assert raw.expect("worker_init_response").worker_init_response.result.status == SUCCESS


# -- the host ends the conversation -----------------------------------------------------------


@pytest.mark.parametrize("how", ["ok-trailers", "error-status", "server-gone"])
def test_host_closes_stream_mid_conversation(host, how):
    host.init()
    host.status()
    if how == "ok-trailers":
        # A normal end of the stream: exit 0 (azfunc-worker --help), still with a message.
        host.close_stream()
        host.process.assert_clean_exit(CLOSED)
        return
    if how == "error-status":
        host.close_stream(grpc.StatusCode.UNAVAILABLE, "host shutting down")
    else:
        host.stop_server()
    host.process.assert_error_exit(CLOSED)


@pytest.mark.parametrize("how", ["rst-stream", "goaway-error", "tcp-close", "partial-frame-then-end"])
def test_raw_host_ends_stream(app_dir, worker_exe, how):
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        if how == "rst-stream":
            raw.reset_stream()
        elif how == "goaway-error":
            raw.send_goaway(error_code=2, last_stream_id=0)  # INTERNAL_ERROR: the connection is gone
        elif how == "tcp-close":
            raw.close_connection()
        else:  # a frame announcing 100 bytes, 10 sent, then the stream ends
            raw.send_data(grpc_frame(b"x" * 100)[:15])
            raw.send_trailers(0)
        raw.process.assert_error_exit(CLOSED + r"|truncat|incomplete|partial")


@pytest.mark.parametrize("headers, end, pattern", [
    ([(":status", "404"), ("content-type", "text/html")], False, r"404|status|content-type"),
    ([(":status", "200"), ("content-type", "text/html")], False, r"content-type|grpc"),
    ([(":status", "200"), ("content-type", "application/grpc"), ("grpc-status", "12"),
      ("grpc-message", "no FunctionRpc here")], True, r"12|no FunctionRpc here"),
], ids=["http-404", "not-grpc", "trailers-only-unimplemented"])
def test_host_refuses_the_call(app_dir, worker_exe, headers, end, pattern):
    with RawHost(app_dir, worker_exe, response_headers=headers, end_at_headers=end) as raw:
        raw.process.assert_error_exit(pattern, timeout=azhost.TIMEOUT / 3)  # it is told at once


def test_malformed_grpc_status_is_an_error(app_dir, worker_exe):
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        raw.send_trailers("nonsense", "bad trailers")
        raw.process.assert_error_exit(r"status|bad trailers")


def test_graceful_goaway_lets_the_stream_finish(app_dir, worker_exe):
    # GOAWAY(NO_ERROR) naming our stream as processed: no new streams, but this one goes on.
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        raw.send_goaway(error_code=0, last_stream_id=raw.stream_id)
        rid = raw.status()
        raw.wait_for(lambda: rid in raw.status_replies(), "a status reply after GOAWAY")
        raw.send_trailers(0)
        raw.process.assert_clean_exit(CLOSED)  # a normal end of the stream


# -- bad bytes on the stream ------------------------------------------------------------------


@pytest.mark.parametrize("data, pattern", [
    (b"\xffgarbage instead of a gRPC frame", r"frame|flag|invalid|malformed|protocol"),
    (grpc_frame(pb.StreamingMessage(worker_status_request=pb.WorkerStatusRequest()).SerializeToString(),
                compressed=True), r"compress"),
    (b"\x00\xff\xff\xff\xff", r"limit|length|large|exceed"),  # announces 4 GiB, sends nothing more
], ids=["bad-prefix", "compressed-without-encoding", "4GiB-prefix"])
def test_garbage_frame_fails_the_stream(app_dir, worker_exe, data, pattern):
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        raw.send_data(data)
        raw.process.assert_error_exit(pattern)
        assert raw.errors == []


def test_undecodable_message_is_a_clear_error(app_dir, worker_exe):
    # A well-framed payload that is not a StreamingMessage (a truncated length-delimited field).
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        raw.send_data(grpc_frame(b"\x12\xff\xff\xff\x0fxx"))
        rid = raw.status()
        # Either the stream fails with a message, or the worker says so in a System log and goes on.
        raw.wait_for(lambda: rid in raw.status_replies() or raw.process.returncode is not None,
                     "a status reply or the worker's exit")
        if raw.process.returncode is not None:
            raw.process.assert_error_exit(r"decod|pars|serializ|invalid|malformed|protobuf")
        else:
            logs = [m.rpc_log for m in raw.messages if kind(m) == "rpc_log"]
            assert any(log.log_category == LOG_SYSTEM for log in logs), logs


@pytest.mark.parametrize("families", [("legacy", "functions"), ("functions",), ("legacy",)])
def test_message_over_max_length(make_host, worker_exe, families):
    limit = 4096
    h = make_host(worker_exe, max_message_length=limit, families=families)
    h.init()

    def invocation(size):  # an InvocationRequest of exactly `size` serialized bytes
        msg = pb.StreamingMessage(invocation_request=pb.InvocationRequest(invocation_id=new_id(), function_id="f"))
        pad = pb.ParameterBinding(name="p", data=pb.TypedData(string=""))
        msg.invocation_request.input_data.append(pad)
        pad = msg.invocation_request.input_data[0]
        pad.data.string = "x" * (size - msg.ByteSize())
        while msg.ByteSize() > size:  # the length prefix of the string grew
            pad.data.string = pad.data.string[:-1]
        assert msg.ByteSize() == size
        return msg

    h.start_invocation(request=invocation(limit).invocation_request).wait()  # exactly the limit is fine
    h.start_invocation(request=invocation(limit + 1).invocation_request)
    h.process.assert_error_exit(r"max|length|large|exceed|limit|size")


def test_empty_message_is_ignored(app_dir, worker_exe):
    # A zero-length gRPC message decodes to a StreamingMessage with no content.
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        raw.send_data(grpc_frame(b""))
        rid = raw.status()
        raw.wait_for(lambda: rid in raw.status_replies(), "a status reply")


def test_odd_splits(app_dir, worker_exe):
    with RawHost(app_dir, worker_exe) as raw:
        init(raw)
        one = [grpc_frame(pb.StreamingMessage(request_id=new_id(), worker_status_request=pb.WorkerStatusRequest())
                          .SerializeToString()) for _ in range(3)]
        for b in one[0]:  # a message in 1-byte DATA frames
            raw.send_data(bytes([b]))
        raw.send_data(one[1] + one[2])  # two messages in one DATA frame
        raw.wait_for(lambda: len(raw.status_replies()) == 3, "3 status replies")
        raw.ping()
        assert raw.errors == []


# -- a host that stops reading ----------------------------------------------------------------


def test_back_pressure_grpcio_host(host):
    host.init()
    host.pause_reading()
    rids = host.status_burst(2000, wait=False)
    host.resume_reading()
    host.wait_status(rids)
    assert host.status() == pb.WorkerStatusResponse()


def test_back_pressure_flow_control_window(app_dir, worker_exe):
    """The host grants 1 KiB of window and stops acknowledging: the worker must queue, not fail."""
    import threading

    with RawHost(app_dir, worker_exe, initial_window=1024) as raw:
        init(raw)
        raw.pause_reading()
        n = 3000  # ~150 KB of replies, far over the connection window
        rids = [new_id() for _ in range(n)]
        sender = threading.Thread(target=lambda: [raw.send_message(pb.StreamingMessage(
            request_id=r, worker_status_request=pb.WorkerStatusRequest())) for r in rids])
        sender.start()
        raw.wait_for(lambda: raw.data_bytes >= 512, "the worker to use the window")
        assert len(raw.status_replies()) < n
        assert raw.process.returncode is None
        raw.resume_reading()
        sender.join(raw.timeout)
        raw.wait_for(lambda: len(raw.status_replies()) == n, f"{n} status replies")
        assert raw.status_replies() == rids  # all of them, in order
        assert raw.errors == []  # never overran the window


# -- messages the worker does not know --------------------------------------------------------


@pytest.mark.parametrize("field", [3, 10, 18, 23, 1000])
def test_unknown_oneof_member_is_logged_and_ignored(host, field):
    host.init()
    before = len(host.system_logs)
    host.send_raw(azhost.unknown_member(field, b"\x0a\x03abc"))
    assert host.status() == pb.WorkerStatusResponse()
    assert len(host.system_logs) > before, "no System log about the unknown message"
    assert host.metadata().use_default_metadata_indexing  # still answering


@pytest.mark.parametrize("content", [
    {"file_change_event_request": pb.FileChangeEventRequest(type=1, full_path="/x", name="f")},
    {"worker_heartbeat": pb.WorkerHeartbeat()},
    {"worker_action_response": pb.WorkerActionResponse(reason="r")},
], ids=lambda c: next(iter(c)))
def test_unimplemented_message_is_logged_and_ignored(host, content):
    host.init()
    before = len(host.received), len(host.system_logs)
    host.send(**content)
    host.status()
    assert len(host.system_logs) > before[1]
    assert {kind(m) for m in host.received[before[0]:]} == {"rpc_log", "worker_status_response"}


# -- TLS --------------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["untrusted", "wrong-name", "no-ca"])
def test_bad_certificate_is_refused(make_host, worker_exe, tmp_path, bad):
    tls = azhost.Tls(tmp_path, self_signed=bad == "untrusted", hostname="wrong.example" if bad == "wrong-name"
                     else "127.0.0.1")
    h = make_host(worker_exe, tls=tls, start=False, check=False)
    if bad == "no-ca":
        h.extra_args = []  # system trust store only
    h.start(wait=False)
    h.process.assert_error_exit(r"certificate|verif|tls|ssl|handshake")
    assert not h.connected


def test_bad_certificate_accepted_when_verification_is_off(make_host, worker_exe, tmp_path):
    tls = azhost.Tls(tmp_path, self_signed=True)
    h = make_host(worker_exe, tls=tls, start=False)
    h.extra_args.append(azhost.TLS_INSECURE_FLAG)
    h.start()
    assert h.init().result.status == SUCCESS
    h.status()
