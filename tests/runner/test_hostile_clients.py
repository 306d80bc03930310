"""`azfunc start` against hostile clients and crashing apps (issue 14): limits, timeouts,
HTTP framing by the book, shutdown and the supervisor. Raw sockets on loopback only;
every wait is bounded, and no assertion depends on how fast the machine is."""

import http.client
import os
import resource
import signal
import socket
import threading
import time

import pytest

from test_runner import APPS, AZFUNC, EXAMPLES, WAIT, Runner, start  # noqa: F401

HOSTILE = APPS / "hostile"


def connect(r):
    s = socket.create_connection(("127.0.0.1", r.port), timeout=WAIT)
    return s


class Responses:
    """Reads consecutive responses from one socket (pipelining, keep-alive)."""

    class _Reader:
        """The socket's reader, kept open when http.client closes a response."""

        def __init__(self, f):
            self.f = f

        def __getattr__(self, name):
            return getattr(self.f, name)

        def close(self):
            pass

    def __init__(self, sock):
        self.file = self._Reader(sock.makefile("rb"))
        self.sock = sock

    def makefile(self, *args, **kw):
        return self.file

    def next(self, method="GET"):
        resp = http.client.HTTPResponse(self, method=method)
        resp.begin()
        body = resp.read()
        return resp.status, dict(resp.getheaders()), body


def exchange(r, raw, method="GET", shut=False):
    with connect(r) as s:
        s.sendall(raw)
        if shut:
            s.shutdown(socket.SHUT_WR)
        return Responses(s).next(method)


def closed_within(sock, seconds):
    """True when the server closes the connection (EOF or reset) within `seconds`."""
    sock.settimeout(seconds)
    try:
        while sock.recv(65536):
            pass
        return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def peer_closed_within(sock, seconds):
    """True when the server ends the connection within `seconds`, read without reading:
    the kernel's TCP state (CLOSE_WAIT after its FIN, CLOSE after its reset)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 8)[0]
        if state in (7, 8):  # TCP_CLOSE, TCP_CLOSE_WAIT
            return True
        time.sleep(0.1)
    return False


# ---- limits -----------------------------------------------------------------------


def test_header_limits(start):
    r = start(HOSTILE)
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(101))
    assert exchange(r, b"GET /api/hello HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")[0] == 431
    big = b"X-Big: " + b"v" * 40000 + b"\r\n"
    assert exchange(r, b"GET /api/hello HTTP/1.1\r\nHost: x\r\n" + big + b"\r\n")[0] in (413, 431)
    line = b"GET /api/hello?name=" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    assert exchange(r, line)[0] in (413, 414)
    # An 8 MB header is refused long before it has all arrived.
    with connect(r) as s:
        s.sendall(b"GET /api/hello HTTP/1.1\r\nHost: x\r\nX-Huge: ")
        try:
            for _ in range(8 * 16):
                s.sendall(b"v" * 65536)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert closed_within(s, WAIT)
    assert r.request("/api/hello?name=ok")[:2] == (200, b"Hello, ok!")


def test_limits_from_host_json_and_flags(start, tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "function_app.py").write_text((HOSTILE / "function_app.py").read_text())
    (app / "host.json").write_text('{"version": "2.0", "extensions": {"http": '
                                   '{"maxRequestHeaderCount": 5, "maxRequestBodySize": 10}}}')
    r = start(app)
    hs = b"".join(b"X-H%d: v\r\n" % i for i in range(6))
    assert exchange(r, b"GET /api/hello HTTP/1.1\r\n" + hs + b"\r\n")[0] == 431
    assert r.request("/api/echo", "POST", b"x" * 11)[0] == 413
    r = start(app, "--max-header-count", "50")  # the flag wins over host.json
    assert exchange(r, b"GET /api/hello HTTP/1.1\r\n" + hs + b"\r\n")[0] == 200


def test_many_headers_and_params_do_not_stall_others(start):
    # With the limits raised, 100,000 header fields (1.2 MB) and 50,000 query
    # parameters are collected in linear time; a small request is answered meanwhile.
    r = start(HOSTILE, "--max-header-count", "200000", "--max-header-size", "4000000",
              "--max-request-line", "1000000")
    headers = b"".join(b"X-Header-%06d: v\r\n" % i for i in range(100000))
    query = b"&".join(b"p%d=v" % i for i in range(50000))
    results = []

    def hostile(raw):
        results.append(exchange(r, raw))

    threads = [threading.Thread(target=hostile, args=(raw,)) for raw in (
        b"GET /api/count HTTP/1.1\r\nHost: x\r\n" + headers + b"\r\n",
        b"GET /api/count?" + query + b" HTTP/1.1\r\nHost: x\r\n\r\n")]
    for t in threads:
        t.start()
    assert r.request("/api/hello?name=meanwhile")[:2] == (200, b"Hello, meanwhile!")
    for t in threads:
        t.join(WAIT)
    assert sorted(b for _, _, b in results) == [b"1 headers, 50000 params",
                                                b"100001 headers, 0 params"]


@pytest.mark.parametrize("kind", ["idle", "partial-line", "slow-headers", "slow-body",
                                  "idle-keep-alive", "unread-response"])
def test_slow_clients_are_cut_off(start, kind):
    r = start(HOSTILE, "--request-timeout", "2", "--keep-alive-timeout", "2")
    s = connect(r)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    if kind == "partial-line":
        s.sendall(b"GET /api/hel")
    elif kind in ("slow-headers", "slow-body"):
        head = b"GET /api/hello HTTP/1.1\r\nHost: x\r\n" if kind == "slow-headers" else \
            b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"
        s.sendall(head)
        deadline = time.monotonic() + WAIT
        try:  # one byte every half second: never idle, never complete
            while time.monotonic() < deadline:
                s.sendall(b"X" if kind == "slow-body" else b"X-A: b\r\n"[:1])
                time.sleep(0.5)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert time.monotonic() < deadline
    elif kind == "idle-keep-alive":
        s.sendall(b"GET /api/hello HTTP/1.1\r\nHost: x\r\n\r\n")
        assert Responses(s).next()[0] == 200
    elif kind == "unread-response":
        s.sendall(b"GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n" * 20)  # never read
        assert peer_closed_within(s, WAIT)
    assert closed_within(s, WAIT), kind
    s.close()
    assert r.request("/api/hello")[0] == 200


def test_descriptor_limit_pauses_accept(start):
    """At EMFILE accept pauses and says so once; it does not spin."""
    def low_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (128, 128))

    r = Runner(HOSTILE, "--max-connections", "100000", preexec_fn=low_limit)
    try:
        r.started()
        socks = []
        for _ in range(160):  # more than the runner has descriptors
            socks.append(socket.create_connection(("127.0.0.1", r.port), timeout=WAIT))
        r.wait_for("Cannot accept connections")
        time.sleep(1.5)  # a spinning accept loop would fill the output meanwhile

        def once_per_episode():
            out = r.output
            return out.count("Cannot accept connections") <= \
                out.count("Accepting connections again") + 1

        assert once_per_episode() and len(r.output) < 20000, r.output[-2000:]
        for s in socks:
            s.close()
        assert r.request("/api/hello?name=again")[:2] == (200, b"Hello, again!")
        assert once_per_episode()
    finally:
        r.proc.kill()
        r.proc.wait()


def test_connection_limit_queues_the_rest(start):
    r = start(HOSTILE, "--max-connections", "4")
    idle = [connect(r) for _ in range(4)]
    result = []
    t = threading.Thread(target=lambda: result.append(r.request("/api/hello?name=fifth")[:2]))
    t.start()
    t.join(1.0)
    assert not result  # waiting in the backlog, not refused
    idle[0].close()
    t.join(WAIT)
    assert result == [(200, b"Hello, fifth!")]
    for s in idle[1:]:
        s.close()


# ---- HTTP by the book ---------------------------------------------------------------


def test_no_body_for_204_304_and_head(start):
    r = start(HOSTILE)
    with connect(r) as s:
        reader = Responses(s)
        s.sendall(b"GET /api/status/204 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /api/status/304 HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"HEAD /api/big HTTP/1.1\r\nHost: x\r\n\r\n"
                  b"GET /api/hello?name=next HTTP/1.1\r\nHost: x\r\n\r\n")
        assert reader.next()[::2] == (204, b"")
        assert reader.next()[::2] == (304, b"")
        status, headers, body = reader.next("HEAD")
        assert (status, body, headers.get("Content-Length")) == (200, b"", str(1 << 20))
        # The connection is still in step: the next response parses.
        assert reader.next()[::2] == (200, b"Hello, next!")


def test_framing_errors(start):
    r = start(HOSTILE)
    post = b"POST /api/echo HTTP/1.1\r\nHost: x\r\n"
    assert exchange(r, post + b"Content-Length: 3\r\nContent-Length: 4\r\n\r\nabcd")[0] == 400
    # Repeated, even identical: llhttp refuses it (RFC 9110 8.6 lets a recipient do so).
    assert exchange(r, post + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc")[0] == 400
    assert exchange(r, post + b"Transfer-Encoding: gzip\r\n\r\nabc")[0] == 501
    assert exchange(r, post + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"
                    b"3\r\nabc\r\n0\r\n\r\n")[0] == 400
    assert exchange(r, post + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")[::2] \
        == (200, b"abc")
    assert exchange(r, b"GARBAGE\r\n\r\n")[0] == 400
    assert exchange(r, b"GET /api/hello HTTP/1.1\r\nNo colon here\r\n\r\n")[0] == 400


def test_malformed_chunk_is_refused(start):
    r = start(HOSTILE)
    post = b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    for body in (b"zz\r\nabc\r\n0\r\n\r\n",  # not hex
                 b"-3\r\nabc\r\n0\r\n\r\n",  # signed
                 b"3\r\nabcd\r\n0\r\n\r\n",  # longer than its size
                 b"ffffffffffffffffffff\r\nabc\r\n"):  # overflows
        with connect(r) as s:
            s.sendall(post + body)
            status, headers, _ = Responses(s).next()
            # RFC 9112 7.1: 400, and the rest of the stream cannot be trusted.
            assert (status, headers.get("Connection")) == (400, "close"), body
            assert closed_within(s, WAIT)
    assert r.request("/api/hello")[0] == 200


def test_chunk_extensions_and_trailers(start):
    r = start(HOSTILE)
    post = b"POST /api/echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    with connect(r) as s:
        reader = Responses(s)
        # An extension on a chunk and on the last chunk, and a trailer field; then a
        # second request on the same connection, still in step.
        s.sendall(post + b"3;name=value\r\nabc\r\n2;q=\"x y\"\r\nde\r\n0;end=1\r\n"
                         b"X-Checksum: 5\r\n\r\n")
        assert reader.next()[::2] == (200, b"abcde")
        s.sendall(post + b"1\r\nf\r\n0\r\n\r\n")
        assert reader.next()[::2] == (200, b"f")


def test_refused_client_may_go_on_sending(start):
    # A 413 at the head, while the client goes on sending the body it announced (as a
    # client that does not wait for an answer does): the runner closes its side and reads
    # and drops what comes for a while, so the client's writes do not meet a reset.
    r = start(HOSTILE, "--max-body-size", "1000")
    with connect(r) as s:
        s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\n")
        status, headers, _ = Responses(s).next()
        assert (status, headers.get("Connection")) == (413, "close")
        for _ in range(16):
            s.sendall(b"x" * 65536)
        assert closed_within(s, WAIT)


def test_requests_split_anywhere(start):
    # The parser keeps its place across reads: pipelined requests sent a byte at a time
    # (each byte its own segment, as far as the kernel keeps them apart).
    r = start(HOSTILE)
    raw = (b"POST /api/echo?x=1 HTTP/1.1\r\nHost: x\r\nX-Long-Name: some value \r\n"
           b"Transfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n0\r\nT: 1\r\n\r\n"
           b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\ndefg"
           b"GET /api/hello?name=split HTTP/1.1\r\nHost: x\r\n\r\n")
    with connect(r) as s:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        for i in range(len(raw)):
            s.sendall(raw[i:i + 1])
        reader = Responses(s)
        assert [reader.next()[::2] for _ in range(3)] == [(200, b"abc"), (200, b"defg"),
                                                          (200, b"Hello, split!")]


def test_half_closed_clients_get_whole_responses(start):
    r = start(HOSTILE)
    status, _, body = exchange(r, b"GET /api/big HTTP/1.1\r\nHost: x\r\n\r\n", shut=True)
    assert (status, len(body)) == (200, 1 << 20)
    with connect(r) as s:
        s.sendall(b"".join(b"GET /api/hello?name=%d HTTP/1.1\r\nHost: x\r\n\r\n" % i
                           for i in range(5)))
        s.shutdown(socket.SHUT_WR)
        reader = Responses(s)
        assert [reader.next()[2] for _ in range(5)] == [b"Hello, %d!" % i for i in range(5)]
    # Nothing is left waiting: the stop is immediate and complete.
    assert r.stop() == 0


def test_paths_and_queries(start):
    r = start(HOSTILE)
    get = lambda path: exchange(r, b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")[::2]
    assert get(b"/api/items/12") == (200, b"item '12'")
    assert get(b"/api/items/1%00")[0] == 400  # once cut at NUL, it matched {id:int}
    assert get(b"/api/items/%zz")[0] == 400
    assert get(b"/api/items/%4")[0] == 400
    assert get(b"/api/items/%ff")[0] == 400
    assert get(b"/api/nothing/../hello?name=dots") == (200, b"Hello, dots!")
    assert get(b"/api/./x/%2e%2e/hello?name=enc") == (200, b"Hello, enc!")
    assert get(b"/api/items/%31%32") == (200, b"item '12'")  # decoded once
    assert get(b"/api/hello?name=%ff")[0] == 400  # was a 500
    assert get(b"/api/hello?name=a%00b")[0] == 400
    assert get(b"/api/hello?name=%C3%A9") == (200, "Hello, \u00e9!".encode())


# ---- shutdown ----------------------------------------------------------------------


def hang_in_background(r, seconds=600):
    result = []
    t = threading.Thread(target=lambda: result.append(
        r.request(f"/api/hang?seconds={seconds}")[0]), daemon=True)
    t.start()
    return t, result


def test_grace_period_bounds_the_whole_stop(start):
    r = start(HOSTILE, "--grace-period", "2", "--function-timeout", "0")
    t, result = hang_in_background(r)
    r.wait_for("Executing 'Functions.hang'")
    t0 = time.monotonic()
    r.proc.send_signal(signal.SIGTERM)
    assert r.proc.wait(timeout=WAIT) == 3  # not everything finished
    # Bounded by the grace period (2 s), not by the function (600 s) nor 2 + 10 s.
    assert time.monotonic() - t0 < 2 + 5
    t.join(WAIT)
    assert result == [503]
    r.wait_for("Shutdown grace period over")


def test_second_signal_stops_at_once(start):
    r = start(HOSTILE, "--grace-period", "600", "--function-timeout", "0")
    t, result = hang_in_background(r)
    r.wait_for("Executing 'Functions.hang'")
    r.proc.send_signal(signal.SIGINT)
    r.wait_for("SIGINT received: stopping")
    r.proc.send_signal(signal.SIGINT)
    assert r.proc.wait(timeout=WAIT) == 3
    r.wait_for("Second SIGINT: stopping now, 1 invocation(s)")
    t.join(WAIT)
    assert result == [503]


def test_complete_drain_exits_zero(start):
    r = start(HOSTILE, "--grace-period", "60")
    t, result = hang_in_background(r, seconds=1)
    r.wait_for("Executing 'Functions.hang'")
    r.proc.send_signal(signal.SIGTERM)
    assert r.proc.wait(timeout=WAIT) == 0
    t.join(WAIT)
    assert result == [200]


# ---- the supervisor ----------------------------------------------------------------


@pytest.mark.parametrize("path,why", [
    ("/api/exit", "The app process exited with code 7"),
    ("/api/segfault", "The app process was killed by signal 11 (Segmentation fault)"),
])
def test_crashing_app_is_restarted(start, path, why):
    # Under AddressSanitizer, let the kernel's SIGSEGV end the process as it would.
    asan = os.environ.get("ASAN_OPTIONS", "")
    r = start(HOSTILE, env={"ASAN_OPTIONS": f"{asan}:handle_segv=0".lstrip(":")})
    # Another request in flight when the app dies is answered too.
    t, result = hang_in_background(r, seconds=60)
    r.wait_for("Executing 'Functions.hang'")
    assert r.request(path)[0] == 500
    r.wait_for(why + " while running 'Functions.%s'" % path.rsplit("/", 1)[1])
    r.wait_for(why + " while running 'Functions.hang'")
    t.join(WAIT)
    assert result == [500]
    r.wait_for("Host started", 2)  # a new app process, on the same socket
    assert r.request("/api/hello?name=again")[:2] == (200, b"Hello, again!")
    assert r.stop() == 0


def test_python_runs_outside_the_socket_owner(start):
    r = start(HOSTILE)
    pid = r.proc.pid
    children = open(f"/proc/{pid}/task/{pid}/children").read().split()
    assert len(children) == 1
    assert "libpython" not in open(f"/proc/{pid}/maps").read()
    assert "libpython" in open(f"/proc/{children[0]}/maps").read()
    listening = {f.name for f in os.scandir(f"/proc/{pid}/fd")
                 if os.readlink(f.path).startswith("socket:")}
    assert listening  # the supervisor holds the listening socket


def test_repeated_crashes_back_off(start):
    r = start(HOSTILE)
    for n in range(1, 4):
        r.wait_for("Host started", n)
        assert r.request("/api/exit")[0] == 500
    r.wait_for("Restarting the app process in 500 ms (2 failures in a row)")
    r.wait_for("Restarting the app process in 1000 ms (3 failures in a row)")
    r.wait_for("Host started", 4)
    assert r.request("/api/hello")[0] == 200


def test_function_timeout_restarts_hung_sync_functions(start):
    # host.json: "functionTimeout": "00:00:03". Six hung sync functions fill the sync
    # thread pool; a seventh request queues behind them.
    r = start(HOSTILE)
    threads = [hang_in_background(r) for _ in range(7)]
    r.wait_for("Executing 'Functions.hang'", 7)
    r.wait_for("Timeout value of 3000 ms exceeded by function 'Functions.hang'")
    for t, _ in threads:
        t.join(WAIT)
    statuses = sorted(res[0] for _, res in threads)
    assert statuses.count(500) >= 6 and set(statuses) <= {500, 503}, statuses
    r.wait_for("Host started", 2)
    assert r.request("/api/hello?name=after")[:2] == (200, b"Hello, after!")


def test_function_timeout_flag(start):
    r = start(HOSTILE, "--function-timeout", "1")
    assert r.request("/api/hang?seconds=600")[0] == 500
    r.wait_for("Timeout value of 1000 ms exceeded by function 'Functions.hang'")
