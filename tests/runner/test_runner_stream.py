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
import socket
import sys
import threading
import time
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


# ---- request bodies: to the function as they arrive -----------------------------------

def test_upload_echoed(streaming):
    """The body reaches the app's server whole, with Content-Length or chunked."""
    r = streaming
    body = bytes(range(256)) * 4096 * 4  # 4 MiB
    status, got, _ = r.request("/api/echo", "POST", body)
    assert (status, len(got), got == body) == (200, len(body), True)
    pieces = [bytes([i]) * 65536 for i in range(64)]
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=WAIT)
    conn.request("POST", "/api/echo", body=iter(pieces), encode_chunked=True)
    resp = conn.getresponse()
    assert (resp.status, resp.read()) == (200, b"".join(pieces))
    conn.close()
    r.wait_for("Executed 'Functions.echo' (Succeeded", 2)


def send_chunk(sock, data):
    sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))


def test_upload_streams_to_the_function(streaming):
    """Piece N of a chunked upload comes back (echoed by the function as it reads it)
    before the client sends piece N+1."""
    r = streaming
    with socket.create_connection(("127.0.0.1", r.port), timeout=WAIT) as s:
        s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        resp = http.client.HTTPResponse(s, method="POST")
        s.settimeout(10)  # each piece's echo: on the way at once when bodies stream
        echoed = b""
        for i in range(5):
            piece = b"piece %d " % i * 100
            send_chunk(s, piece)
            if i == 0:
                resp.begin()  # the function answers once it has started reading
                assert resp.status == 200
            while len(echoed) < 100 * len(b"piece 0 ") * (i + 1):
                echoed += resp.read1(65536)
            assert echoed.endswith(piece)
        s.sendall(b"0\r\n\r\n")
        s.settimeout(WAIT)
        assert resp.read() == b""
    r.wait_for("Executed 'Functions.echo' (Succeeded")


# ---- the exchange with the app's server, seen from the server's side -------------------

class Upstream:
    """The stand-in for the app's HTTP server (tests/runner/apps/stream_upstream)."""

    def __init__(self):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(WAIT)
        self.port = self.sock.getsockname()[1]

    def accept(self):
        """The next forwarded request: (connection, request line, headers, bytes after
        the head). The worker's start-up check (a connection without a request) is
        skipped."""
        while True:
            c, _ = self.sock.accept()
            c.settimeout(WAIT)
            data = b""
            while b"\r\n\r\n" not in data:
                got = c.recv(65536)
                if not got:
                    break
                data += got
            if b"\r\n\r\n" in data:
                head, rest = data.split(b"\r\n\r\n", 1)
                line, *fields = head.decode("latin-1").split("\r\n")
                headers = [tuple(x.strip() for x in f.split(":", 1)) for f in fields]
                return c, line, headers, rest
            c.close()


def header(headers, name):
    got = [v for k, v in headers if k.lower() == name.lower()]
    assert len(got) <= 1, headers
    return got[0] if got else None


def read_chunked(c, buf):
    """A chunked body from buf and then c, to its last chunk."""
    body = b""
    while True:
        while b"\r\n" not in buf:
            buf += c.recv(65536)
        size, buf = buf.split(b"\r\n", 1)
        n = int(size, 16)
        while len(buf) < n + 2:
            buf += c.recv(65536)
        body, buf = body + buf[:n], buf[n + 2:]
        if n == 0:
            return body


def serve_upstream(start, tmp_path, timeout):
    """azfunc start on stream_upstream and its stand-in server; timeout: the invocation's
    wait for its request and the proxy's activity timeout (AZF_HTTP_PROXY_TIMEOUT_SECONDS)."""
    if not has_app_package("azurefunctions.extensions.http.fastapi"):
        pytest.skip("azurefunctions-extensions-http-fastapi (requirements-dev.txt)")
    up = Upstream()
    dst = tmp_path / "stream_upstream"
    shutil.copytree(Path(__file__).resolve().parent / "apps" / "stream_upstream", dst)
    r = started(start, dst, env={"AZF_TEST_UPSTREAM_PORT": str(up.port),
                                 "AZF_HTTP_PROXY_TIMEOUT_SECONDS": str(timeout)})
    r.wait_for(f"HTTP streaming: HTTP functions are served by the app at "
               f"http://127.0.0.1:{up.port}")
    return r, up


@pytest.fixture
def upstream(start, tmp_path):
    r, up = serve_upstream(start, tmp_path, 10)
    yield r, up
    up.sock.close()


def client(r, raw):
    """A raw request to the runner; its response, not yet begun."""
    s = socket.create_connection(("127.0.0.1", r.port), timeout=WAIT)
    s.sendall(raw)
    return s, http.client.HTTPResponse(s, method=raw.split(b" ", 1)[0].decode())


def test_forwarded_request_and_streamed_response(upstream):
    r, up = upstream
    s, resp = client(r, b"POST /api/up/a%20b?q=1 HTTP/1.1\r\nHost: front\r\n"
                        b"Connection: keep-alive, X-Hop\r\nKeep-Alive: timeout=5\r\nX-Hop: 1\r\n"
                        b"TE: trailers\r\nX-Custom: kept\r\nx-ms-invocation-id: forged\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
    c, line, headers, rest = up.accept()
    assert line == "POST /api/up/a%20b?q=1 HTTP/1.1"
    assert header(headers, "Host") == "front" and header(headers, "X-Custom") == "kept"
    for hop in ("Keep-Alive", "X-Hop", "TE"):  # hop-by-hop, and what Connection names
        assert header(headers, hop) is None, headers
    assert re.fullmatch(r"[0-9a-f-]{36}", header(headers, "x-ms-invocation-id"))
    assert header(headers, "Transfer-Encoding") == "chunked"
    assert header(headers, "Content-Length") is None
    assert read_chunked(c, rest) == b"hello world"
    r.wait_for(f"Id={header(headers, 'x-ms-invocation-id')})")  # the invocation's

    # The response: its headers minus the hop-by-hop ones, its body as it comes.
    c.sendall(b"HTTP/1.1 201 Made\r\nContent-Type: text/plain\r\nX-Up: 1\r\n"
              b"Connection: close\r\nContent-Length: 12\r\n\r\nfirst\n")
    resp.begin()
    assert (resp.status, resp.reason, resp.getheader("X-Up")) == (201, "Made", "1")
    assert resp.getheader("Transfer-Encoding") == "chunked"
    assert resp.readline() == b"first\n"  # while the server still holds the rest
    c.sendall(b"second")
    assert resp.read() == b"second"
    c.close()
    s.close()


def test_content_length_passes_through(upstream):
    r, up = upstream
    s, resp = client(r, b"PUT /api/up/x HTTP/1.1\r\nHost: front\r\nContent-Length: 11\r\n\r\n"
                        b"hello world")
    c, line, headers, rest = up.accept()
    assert line == "PUT /api/up/x HTTP/1.1"
    assert (header(headers, "Content-Length"), header(headers, "Transfer-Encoding")) == ("11", None)
    while len(rest) < 11:
        rest += c.recv(65536)
    assert rest == b"hello world"
    c.sendall(b"HTTP/1.1 204 No Content\r\n\r\n")
    resp.begin()
    assert (resp.status, resp.read()) == (204, b"")
    c.close()
    s.close()


def test_head_and_interim_responses(upstream):
    """A reply to HEAD ends at its head, whatever Content-Length it announces; an interim
    (1xx) response is not passed on; a body delimited by the connection's end is whole."""
    r, up = upstream
    s, resp = client(r, b"HEAD /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Up: 1\r\n\r\n")
    resp.begin()
    assert (resp.status, resp.getheader("X-Up"), resp.read()) == (200, "1", b"")
    c.close()
    s.close()
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(b"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
              b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    resp.begin()
    assert (resp.status, resp.getheader("Link"), resp.read()) == (200, None, b"ok")
    c.close()
    s.close()
    # A body that ends with the connection is complete for the client too.
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(b"HTTP/1.1 200 OK\r\n\r\nto the end")
    c.close()
    resp.begin()
    assert (resp.status, resp.read()) == (200, b"to the end")
    s.close()


@pytest.mark.parametrize("answer", [b"", b"garbage\r\n\r\n"])
def test_server_fails_before_answering(upstream, answer):
    r, up = upstream
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(answer)
    c.close()
    resp.begin()
    assert resp.status == 502
    s.close()
    r.wait_for("HTTP streaming: bad response from the app's server" if answer else
               "HTTP streaming: the app's server closed the connection before answering")


def test_silent_server_times_out(start, tmp_path):
    """No progress with the app's server for AZF_HTTP_PROXY_TIMEOUT_SECONDS (the host's
    240 s by default): 502, or the reply cut short once it has begun."""
    r, up = serve_upstream(start, tmp_path, 1)
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    resp.begin()
    assert resp.status == 502
    r.wait_for("HTTP streaming: no progress with the app's server for 1 s: exchange dropped")
    c.close()
    s.close()
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfirst")
    resp.begin()
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    c.close()
    s.close()
    up.sock.close()


def test_server_fails_while_answering(upstream):
    """A response cut short reaches the client cut short, not as a complete one."""
    r, up = upstream
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
    resp.begin()
    assert resp.readline() == b"first\n"
    c.close()
    with pytest.raises(http.client.IncompleteRead):
        resp.read()
    s.close()
    r.wait_for("the app's server closed the connection before the response was complete")


def refusing(port):
    """A socket bound to port and not listening: connections to it are refused."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    return s


def test_connect_retries(upstream):
    """As the host: a refused connection is tried again (10 attempts in all, 50 ms apart
    doubling to 250 ms); then 502."""
    r, up = upstream
    up.sock.close()
    with refusing(up.port) as s:
        began = time.monotonic()
        assert r.request("/api/up/x")[0] == 502
        assert time.monotonic() - began >= 1.7  # 50+100+200+6*250 ms between attempts
        r.wait_for(f"HTTP streaming: cannot connect to the app's server at 127.0.0.1:{up.port}"
                   f" after 10 attempts (Connection refused)")

        # A server that starts listening while the runner retries gets the request.
        cl, resp = client(r, b"GET /api/up/y HTTP/1.1\r\nHost: front\r\n\r\n")
        time.sleep(0.3)  # not synchronisation: the attempts go on for 1.85 s
        s.listen()
        s.settimeout(WAIT)
        c, _ = s.accept()
        assert c.recv(65536).startswith(b"GET /api/up/y HTTP/1.1\r\n")
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        resp.begin()
        assert (resp.status, resp.read()) == (200, b"ok")
        c.close()
        cl.close()


def test_client_gone_ends_the_exchange(upstream):
    r, up = upstream
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    c.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nfirst\n\r\n")
    resp.begin()
    assert resp.readline() == b"first\n"
    s.shutdown(socket.SHUT_RDWR)
    s.close()
    try:  # the runner closes its connection to the server
        assert c.recv(65536) == b""
    except ConnectionResetError:
        pass
    c.close()


def test_slow_client_holds_the_server_back(upstream):
    """The runner stops reading from the app's server while the client is behind (its
    backlog is 1 MiB), and passes everything on once the client reads."""
    r, up = upstream
    s, resp = client(r, b"GET /api/up/x HTTP/1.1\r\nHost: front\r\n\r\n")
    c = up.accept()[0]
    total, block = 64 << 20, bytes(1 << 16)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % total)
    c.settimeout(2)  # stalled this long: the runner has stopped reading
    sent = 0
    try:
        while sent < total:
            sent += c.send(block)
    except TimeoutError:
        pass
    assert sent < total / 2  # socket buffers and the runner's backlog hold far less
    c.settimeout(WAIT)
    rest = threading.Thread(target=lambda: c.sendall(bytes(total - sent)), daemon=True)
    rest.start()
    resp.begin()
    got = 0
    while chunk := resp.read1(1 << 20):
        got += len(chunk)
    assert got == total
    rest.join(WAIT)
    c.close()
    s.close()


def test_upload_forwarded_piece_by_piece(upstream):
    """Piece N of a chunked upload reaches the app's server before the client sends N+1."""
    r, up = upstream
    s, resp = client(r, b"POST /api/up/x HTTP/1.1\r\nHost: front\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
    send_chunk(s, b"piece 0")
    up.sock.settimeout(10)  # the head, then each piece: on the way at once when bodies stream
    c, line, headers, got = up.accept()
    c.settimeout(10)
    for i in range(1, 4):
        while b"piece %d" % (i - 1) not in got:
            got += c.recv(65536)
        send_chunk(s, b"piece %d" % i)
    s.sendall(b"0\r\n\r\n")
    c.settimeout(WAIT)
    assert read_chunked(c, got) == b"piece 0piece 1piece 2piece 3"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    resp.begin()
    assert (resp.status, resp.read()) == (200, b"ok")
    c.close()
    s.close()




def test_slow_server_holds_the_client_back(upstream):
    """The runner stops reading an upload while the app's server is behind (its backlog
    is 1 MiB), and passes all of it on once the server reads."""
    r, up = upstream
    total, block = 64 << 20, bytes(1 << 16)
    s = socket.create_connection(("127.0.0.1", r.port), timeout=WAIT)
    s.sendall(b"POST /api/up/x HTTP/1.1\r\nHost: front\r\nContent-Length: %d\r\n\r\n" % total)
    s.settimeout(2)  # stalled this long: the runner has stopped reading
    sent = 0
    try:
        while sent < total:
            sent += s.send(block[:total - sent])
    except TimeoutError:
        pass
    assert sent < total / 2  # socket buffers and the runner's backlog hold far less
    s.settimeout(WAIT)
    rest = threading.Thread(target=lambda: s.sendall(bytes(total - sent)), daemon=True)
    rest.start()
    c, line, headers, got = up.accept()
    assert header(headers, "Content-Length") == str(total)
    n = len(got)
    while n < total:
        n += len(c.recv(1 << 20))
    rest.join(WAIT)
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    resp = http.client.HTTPResponse(s, method="POST")
    resp.begin()
    assert (resp.status, resp.read()) == (200, b"ok")
    c.close()
    s.close()


# ---- the request body as the HTTP front streams it ---------------------------------------

def upstream_closed(c):
    """True when the runner closes the upstream connection (EOF or reset) in time."""
    try:
        while c.recv(65536):
            pass
        return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_body_pieces_arrive_before_the_body_ends(upstream):
    """The front dispatches at the head: the server gets the head and the first piece
    while the client has not sent the rest."""
    r, up = upstream
    s, resp = client(r, b"POST /api/up/x HTTP/1.1\r\nHost: front\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    c, line, headers, rest = up.accept()
    assert line == "POST /api/up/x HTTP/1.1"
    while b"first" not in rest:
        rest += c.recv(65536)
    s.sendall(b"4;ext=1\r\nlast\r\n0\r\nX-Trailer: t\r\n\r\n")
    assert read_chunked(c, rest) == b"firstlast"
    c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    resp.begin()
    assert (resp.status, resp.read()) == (200, b"ok")
    c.close()
    s.close()




def test_malformed_chunk_in_a_streamed_body(upstream):
    """A bad chunk size after the body has begun to stream: the client gets 400 and the
    connection closes; the app's server sees the exchange end."""
    r, up = upstream
    s, resp = client(r, b"POST /api/up/x HTTP/1.1\r\nHost: front\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n5\r\nfirst\r\n")
    c = up.accept()[0]
    s.sendall(b"zz\r\nabc\r\n")
    resp.begin()
    assert (resp.status, resp.getheader("Connection")) == (400, "close")
    assert upstream_closed(c)
    c.close()
    s.close()


def test_client_leaves_during_a_streamed_body(upstream):
    r, up = upstream
    s, resp = client(r, b"PUT /api/up/x HTTP/1.1\r\nHost: front\r\nContent-Length: 100\r\n\r\n"
                        b"0123456789")
    c = up.accept()[0]
    resp.close()
    s.close()
    assert upstream_closed(c)
    c.close()
    assert r.request("/api/hello-not-there")[0] == 404  # still serving
