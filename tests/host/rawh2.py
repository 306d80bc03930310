"""A minimal h2c FunctionRpc "host" on python-hyper's h2, for faults grpcio cannot produce.

It accepts one worker connection, checks the gRPC request, waits for StartStream, and then
sends exactly the bytes a test asks for: well-formed messages, arbitrary DATA payloads
(garbage, bad prefixes, compressed flags), trailers, RST_STREAM, GOAWAY; and it can stop
granting flow-control window (a host that stops reading).
"""

import socket
import struct
import threading

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import hyperframe.frame

import azhost
from azhost import TIMEOUT, HostError, kind, new_id, pb


def grpc_frame(payload, compressed=False):
    """The 5-byte gRPC length prefix plus payload."""
    return struct.pack(">BI", 1 if compressed else 0, len(payload)) + payload


class RawHost:
    def __init__(self, app_dir, worker=None, *, initial_window=None, response_headers=None, end_at_headers=False,
                 timeout=TIMEOUT, **spawn_kw):
        self.app_dir = app_dir
        self.worker = worker
        self.initial_window = initial_window  # our SETTINGS_INITIAL_WINDOW_SIZE, None = default
        # What we answer the worker's request with; end_at_headers makes it a trailers-only response.
        self.response_headers = response_headers or [(":status", "200"), ("content-type", "application/grpc")]
        self.end_at_headers = end_at_headers
        self.timeout = timeout
        self.spawn_kw = spawn_kw
        self.worker_id = new_id()
        self.request_id = new_id()
        self.request_headers = None  # the worker's request headers, {name: value}
        self.stream_id = None
        self.messages = []  # decoded StreamingMessages from the worker, in order
        self.errors = []  # what a gRPC server would reject
        self.stream_reset = None  # error code of the worker's RST_STREAM
        self.goaway = None  # error code of the worker's GOAWAY
        self.stream_ended = False  # worker half-closed its side
        self.disconnected = False  # socket closed by the worker
        self.received_bytes = 0  # everything read from the socket
        self.data_bytes = 0  # DATA payload on the stream (what flow control counts)
        self.ping_acks = []  # opaque data of the PING ACKs received
        self._buf = b""
        self._sock = None
        self._reading = True
        self._unacked = 0
        self._cond = threading.Condition()
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))

    # -- lifecycle ------------------------------------------------------------------------------

    def __enter__(self):
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(1)
        self.port = self._listener.getsockname()[1]
        self.process = azhost.spawn_worker(self.port, worker=self.worker, app_dir=self.app_dir,
                                           worker_id=self.worker_id, request_id=self.request_id, **self.spawn_kw)
        threading.Thread(target=self._pump, daemon=True).start()
        self.wait_for(lambda: self.messages, "start_stream")
        first = self.messages[0]
        if kind(first) != "start_stream" or first.start_stream.worker_id != self.worker_id:
            raise HostError(f"first message {first} is not start_stream with worker_id {self.worker_id}")
        with self._cond:
            self.conn.send_headers(self.stream_id, self.response_headers, end_stream=self.end_at_headers)
            self._flush()
        return self

    def __exit__(self, *exc):
        self.close_connection()
        try:
            self.process.wait(10)
        except HostError:
            self.process.kill()
        print(f"worker {self.process.argv}\n{self.process.output(200)}")

    def close_connection(self):
        with self._cond:
            if self._sock is not None:
                try:
                    self._sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._sock.close()
        self._listener.close()

    # -- sending --------------------------------------------------------------------------------

    def send_message(self, msg):
        data = msg if isinstance(msg, bytes) else msg.SerializeToString()
        self.send_data(grpc_frame(data))

    def send_data(self, data, end_stream=False):
        """Raw DATA on the stream, split as flow control and frame size allow."""
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._window() > 0 or not data or self.disconnected, self.timeout)
                if self.disconnected:
                    raise HostError("worker disconnected")
                n = min(len(data), self._window(), self.conn.max_outbound_frame_size)
                if n == 0 and data:
                    raise HostError("worker never opened its flow-control window")
                self.conn.send_data(self.stream_id, data[:n], end_stream=end_stream and n == len(data))
                self._flush()
                data = data[n:]
                if not data:
                    return

    def send_trailers(self, status=0, message=""):
        with self._cond:
            headers = [("grpc-status", str(status))] + ([("grpc-message", message)] if message else [])
            self.conn.send_headers(self.stream_id, headers, end_stream=True)
            self._flush()

    def reset_stream(self, error_code=8):  # CANCEL
        with self._cond:
            self.conn.reset_stream(self.stream_id, error_code)
            self._flush()

    def send_goaway(self, error_code=0, last_stream_id=0):
        """A GOAWAY frame written past h2's state machine, so the stream stays usable here."""
        self.send_frame(hyperframe.frame.GoAwayFrame(0, last_stream_id=last_stream_id, error_code=error_code))

    def send_frame(self, frame):
        """Any hyperframe frame, straight onto the socket (after what h2 has queued)."""
        with self._cond:
            self._flush()
            self._sock.sendall(frame.serialize())

    def ping(self, data=b"azfping!"):
        """Sends PING and waits for the worker's ACK carrying the same 8 bytes."""
        with self._cond:
            self.conn.ping(data)
            self._flush()
        self.wait_for(lambda: data in self.ping_acks, "PING ACK")

    def status(self):
        """Sends a WorkerStatusRequest with a fresh request_id; returns that id."""
        rid = new_id()
        self.send_message(pb.StreamingMessage(request_id=rid, worker_status_request=pb.WorkerStatusRequest()))
        return rid

    def status_replies(self):
        return [m.request_id for m in self.messages if kind(m) == "worker_status_response"]

    # -- flow control ---------------------------------------------------------------------------

    def pause_reading(self):
        """Stop granting window: the worker's sends stall once the window is used up."""
        with self._cond:
            self._reading = False

    def resume_reading(self):
        with self._cond:
            self._reading = True
            self._ack(0)

    # -- waiting --------------------------------------------------------------------------------

    def wait_for(self, pred, what, timeout=None):
        timeout = self.timeout if timeout is None else timeout
        with self._cond:
            gone = lambda: self.disconnected or self.process.returncode is not None  # noqa: E731
            if self._cond.wait_for(lambda: pred() or gone(), timeout) and pred():
                return
            # After an exit, let the pump read what the worker sent before it went away.
            if self._cond.wait_for(lambda: pred() or self.disconnected, 10) and pred():
                return
            why = "the worker went away" if gone() else f"timed out after {timeout:.0f}s"
            raise HostError(f"waiting for {what}: {why}; errors {self.errors}\n{self.process.output()}")

    def expect(self, kind_name, timeout=None):
        self.wait_for(lambda: any(kind(m) == kind_name for m in self.messages), kind_name, timeout)
        return next(m for m in self.messages if kind(m) == kind_name)

    # -- internals ------------------------------------------------------------------------------

    def _window(self):
        return self.conn.local_flow_control_window(self.stream_id)

    def _flush(self):
        data = self.conn.data_to_send()
        if data:
            try:
                self._sock.sendall(data)
            except OSError:
                self.disconnected = True

    def _ack(self, n):
        self._unacked += n
        if self._reading and self._unacked:
            self.conn.acknowledge_received_data(self._unacked, self.stream_id)
            self._unacked = 0
            self._flush()

    def _pump(self):
        self._listener.settimeout(self.timeout)
        try:
            self._sock, _ = self._listener.accept()
        except OSError:
            with self._cond:
                self.disconnected = True
                self._cond.notify_all()
            return
        with self._cond:
            self.conn.initiate_connection()
            if self.initial_window is not None:
                self.conn.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: self.initial_window})
            self._flush()
        while True:
            try:
                data = self._sock.recv(65536)
            except OSError:
                data = b""
            with self._cond:
                if not data:
                    self.disconnected = True
                    self._cond.notify_all()
                    return
                self.received_bytes += len(data)
                try:
                    events = self.conn.receive_data(data)
                except h2.exceptions.ProtocolError as e:
                    self.errors.append(f"HTTP/2 protocol error from the worker: {e!r}")
                    self._flush()
                    self.disconnected = True
                    self._cond.notify_all()
                    return
                for ev in events:
                    self._on_event(ev)
                self._flush()
                self._cond.notify_all()

    def _on_event(self, ev):
        if isinstance(ev, h2.events.RequestReceived):
            if self.stream_id is not None:
                self.errors.append(f"second stream {ev.stream_id}")
                return
            self.stream_id = ev.stream_id
            self.request_headers = dict(ev.headers)
        elif isinstance(ev, h2.events.DataReceived):
            self.data_bytes += ev.flow_controlled_length
            self._ack(ev.flow_controlled_length)
            self._buf += ev.data
            while len(self._buf) >= 5:
                flag, n = struct.unpack(">BI", self._buf[:5])
                if len(self._buf) < 5 + n:
                    break
                payload, self._buf = self._buf[5:5 + n], self._buf[5 + n:]
                if flag != 0:
                    self.errors.append(f"worker sent a frame with compressed flag {flag}")
                    continue
                try:
                    self.messages.append(pb.StreamingMessage.FromString(payload))
                except Exception as e:  # a gRPC server would fail the call: record, go on
                    self.errors.append(f"undecodable message from the worker: {e}")
        elif isinstance(ev, h2.events.StreamEnded):
            self.stream_ended = True
        elif isinstance(ev, h2.events.StreamReset):
            self.stream_reset = ev.error_code
        elif isinstance(ev, h2.events.PingAckReceived):
            self.ping_acks.append(ev.ping_data)
        elif isinstance(ev, h2.events.ConnectionTerminated):
            self.goaway = ev.error_code
