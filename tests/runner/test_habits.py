"""`azfunc start` with Core Tools' habits: the command line (-p/--port, --opt=value,
--help, --functions, --cors), local.settings.json's Host section (LocalHttpPort, CORS),
a busy port, URLs printed with localhost, timers' next occurrences, and one bad route
template failing only its function. Loopback only; every wait is bounded."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
from datetime import datetime
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_runner import AZFUNC, ROOT, WAIT, Runner, free_port  # noqa: E402

APP = Path(__file__).resolve().parent / "apps" / "habits"

pytestmark = pytest.mark.skipif(not AZFUNC.exists(), reason=f"{AZFUNC} not built")


class Started(Runner):
    """A Runner with exactly the given arguments (Runner always adds --port)."""

    def __init__(self, argv, port):
        self.port = port
        e = dict(os.environ)
        e["VIRTUAL_ENV"] = str(ROOT / ".venv")
        e["LSAN_OPTIONS"] = f"suppressions={ROOT}/tests/python/lsan.supp:print_suppressions=0"
        self.proc = subprocess.Popen([str(AZFUNC), "start", *argv], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, env=e, text=True)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()


@pytest.fixture
def run():
    runners = []

    def make(argv, port):
        r = Started([str(a) for a in argv], port)
        runners.append(r)
        return r.started()

    yield make
    for r in runners:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def app_with_host(tmp_path, host):
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    settings = {"IsEncrypted": False, "Values": {"FUNCTIONS_WORKER_RUNTIME": "python"},
                "Host": host}
    (app / "local.settings.json").write_text(json.dumps(settings))
    return app


def test_help_is_usage_on_stdout():
    p = subprocess.run([str(AZFUNC), "start", "--help"], capture_output=True, text=True,
                       timeout=WAIT)
    assert p.returncode == 0 and p.stderr == ""
    assert p.stdout.startswith("usage: azfunc start [DIR] [-p|--port PORT] [--host ADDRESS]")
    assert "  --functions NAME...   serve only these functions" in p.stdout


@pytest.mark.parametrize("form", ["-p", "--port=", "--port"])
def test_port_forms_and_localhost_urls(run, form):
    port = free_port()
    args = [form + str(port)] if form.endswith("=") else [form, port]
    r = run([APP, *args, "--host=127.0.0.1", "--grace-period=5"], port)
    assert f"\tgood: [GET,POST,PUT,DELETE,PATCH,HEAD,OPTIONS] " \
           f"http://localhost:{port}/api/good" in r.output.splitlines()
    assert r.request("/api/good")[:2] == (200, b"good")
    assert r.stop() == 0


def test_bad_route_fails_only_its_function(run):
    port = free_port()
    r = run([APP, "-p", port], port)
    reason = ("The route template 'bad/{id:nosuch}' is invalid: the constraint reference "
              "'nosuch' could not be resolved.")
    assert re.search(r"\] Function 'bad' cannot run: " + re.escape(reason) + "$", r.output,
                     re.M)
    assert f"\tbad: (cannot run: {reason})" in r.output.splitlines()
    assert r.request("/api/good")[:2] == (200, b"good")
    assert r.request("/api/other")[:2] == (200, b"other")
    assert r.request("/api/bad/1")[0] == 404


def test_timer_prints_its_next_five_occurrences(run):
    port = free_port()
    r = run([APP, "--port", port], port)
    head = "] The next 5 occurrences of the 'Functions.tick' schedule (Cron: '0 */5 * * * *') " \
           "will be:"
    r.wait_for(head)
    r.stop()
    r.wait_for("Stopped")  # the last line: all of the output is in
    lines = r.output.splitlines()
    i = next(i for i, l in enumerate(lines) if l.endswith(head))
    times = [datetime.fromisoformat(l) for l in lines[i + 1:i + 6]]
    assert all(t.second == 0 and t.minute % 5 == 0 and t.utcoffset().total_seconds() == 0
               for t in times)
    assert [(b - a).total_seconds() for a, b in zip(times, times[1:])] == [300.0] * 4


def test_functions_filter(run):
    port = free_port()
    r = run([APP, "--port", port, "--functions", "good", "TICK", "nosuch", "--grace-period", "5"],
            port)
    out = r.output.splitlines()
    assert any(l.endswith("] Function 'nosuch' given to --functions is not in the app")
               for l in out)
    listed = [l.split(":")[0].strip() for l in out if l.startswith("\t")]
    assert listed == ["good", "tick"]
    assert r.request("/api/good")[:2] == (200, b"good")
    assert r.request("/api/other")[0] == 404
    assert "Function 'bad' cannot run" not in r.output
    # --functions=NAME: one name.
    port = free_port()
    r = run([APP, "--port", port, "--functions=other"], port)
    assert [l.split(":")[0].strip() for l in r.output.splitlines()
            if l.startswith("\t")] == ["other"]


def test_local_http_port_and_host_cors(run, tmp_path):
    port = free_port()
    app = app_with_host(tmp_path, {"LocalHttpPort": port,
                                   "CORS": "http://a.example,https://b.example"})
    r = run([app], port)
    assert f"http://localhost:{port}/api/good" in r.output
    status, body, h = r.request("/api/good", headers={"Origin": "https://b.example"})
    assert (status, body) == (200, b"good")
    assert h.get_all("Access-Control-Allow-Origin") == ["https://b.example"]
    assert h["Vary"] == "Origin" and "Access-Control-Allow-Credentials" not in h
    # Not allowed: served, without CORS headers.
    status, body, h = r.request("/api/good", headers={"Origin": "http://evil.example"})
    assert (status, body) == (200, b"good") and "Access-Control-Allow-Origin" not in h
    # Preflight: answered by the runner with 204, the function is not invoked.
    status, body, h = r.request("/api/good", method="OPTIONS", headers={
        "Origin": "http://a.example", "Access-Control-Request-Method": "PUT",
        "Access-Control-Request-Headers": "x-one, content-type"})
    assert (status, body) == (204, b"")
    assert h["Access-Control-Allow-Origin"] == "http://a.example"
    assert h["Access-Control-Allow-Methods"] == "PUT"
    assert h["Access-Control-Allow-Headers"] == "x-one, content-type"
    status, body, h = r.request("/api/good", method="OPTIONS", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "PUT"})
    assert (status, body) == (204, b"") and "Access-Control-Allow-Origin" not in h
    # A plain OPTIONS (no preflight headers) still reaches the function.
    assert r.request("/api/good", method="OPTIONS")[:2] == (200, b"good")
    r.wait_for("Executed 'Functions.good' (Succeeded", count=3)
    assert r.output.count("Executing 'Functions.good'") == 3


def test_cors_flag_wins_and_star_with_credentials(run, tmp_path):
    port = free_port()
    app = app_with_host(tmp_path, {"CORS": "http://a.example"})
    r = run([app, "--port", port, "--cors=*"], port)
    h = r.request("/api/good", headers={"Origin": "http://any.example"})[2]
    assert h["Access-Control-Allow-Origin"] == "*" and "Vary" not in h
    r.stop()
    port = free_port()
    r = run([app, "--port", port, "--cors", "*", "--cors-credentials"], port)
    h = r.request("/api/good", headers={"Origin": "http://any.example"})[2]
    assert h["Access-Control-Allow-Origin"] == "http://any.example"
    assert h["Access-Control-Allow-Credentials"] == "true"


def test_busy_port_says_so(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        p = subprocess.run([str(AZFUNC), "start", str(APP), "--port", str(port)],
                           capture_output=True, text=True, timeout=WAIT)
    assert p.returncode == 1 and p.stdout == ""
    assert p.stderr == (f"azfunc start: Port {port} is unavailable. Close the process using "
                        "that port, or specify another port using --port [-p].\n")


def wait_quiet(r, text, seconds=1.5):
    """Asserts `text` does not appear within `seconds` (a bounded negative check)."""
    with pytest.raises(AssertionError, match="no "):
        r.wait_for(text, count=r.output.count(text) + 1, timeout=seconds)


def serve_copy(run, tmp_path, *flags):
    """A copy of the habits app served on a free port; returns (runner, its code file)."""
    app = tmp_path / "app"
    shutil.copytree(APP, app)
    port = free_port()
    return run([app, "-p", port, *flags], port), app / "function_app.py"


def test_restart_on_change_keeps_the_last_good_index(run, tmp_path):
    r, code = serve_copy(run, tmp_path, "--grace-period", "5")
    assert r.request("/api/good")[:2] == (200, b"good")

    # A burst of writes restarts the app once, on the same listening socket.
    for i in range(5):
        code.write_text(code.read_text().replace('return "good"', 'return "better"'))
    r.wait_for("The app's new version is serving")
    assert r.output.count("The app changed: starting it again") == 1
    r.wait_for("] Stopped")  # the old app process has drained: the new one takes it all
    assert r.output.count("Host started") == 2
    assert r.request("/api/good")[:2] == (200, b"better")

    # Files that are not the app's code, and folders that are not the app, are ignored.
    (code.parent / "notes.txt").write_text("x")
    (code.parent / "__pycache__").mkdir(exist_ok=True)
    (code.parent / "__pycache__" / "x.py").write_text("x")
    (code.parent / ".venv").mkdir()
    (code.parent / ".venv" / "y.py").write_text("y")
    wait_quiet(r, "The app changed")

    # A broken edit: the error is printed and the previous version keeps serving.
    code.write_text(code.read_text() + "\nthis is not python(\n")
    r.wait_for("The app's new version did not start (above); the previous one keeps serving")
    assert "The function app failed to index: SyntaxError: '(' was never closed" in r.output
    assert r.request("/api/good")[:2] == (200, b"better")
    assert r.request("/api/other")[:2] == (200, b"other")

    # Fixed again (a new function too): served.
    code.write_text(code.read_text().replace("this is not python(", "") +
                    '\n@app.route(route="new")\ndef new(req):\n    return "new"\n')
    r.wait_for("The app's new version is serving", count=2)
    r.wait_for("] Stopped", count=2)
    assert r.request("/api/new")[:2] == (200, b"new")
    assert r.stop() == 0


def read_reply(sock):
    """One HTTP/1.1 reply on a raw socket: (status, headers in lower case, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        piece = sock.recv(65536)
        assert piece, f"closed after {data!r}"
        data += piece
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode().split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:])}
    while len(body) < int(headers.get("content-length", 0)):
        piece = sock.recv(65536)
        assert piece
        body += piece
    return int(lines[0].split()[1]), headers, body


def test_handover_answers_the_requests_already_on_their_way(run, tmp_path):
    """A connection the old app process took before the new version was ready gets its
    request answered (not a 503, not a reset); an idle kept-alive one is closed, so the
    client's next request goes to the new version."""
    r, code = serve_copy(run, tmp_path, "--grace-period", "30")
    kept = socket.create_connection(("127.0.0.1", int(r.port)), timeout=WAIT)
    kept.sendall(b"GET /api/good HTTP/1.1\r\nHost: x\r\n\r\n")
    assert read_reply(kept)[::2] == (200, b"good")
    # A request begun, and a connection with nothing sent yet, both on the old process
    # (the listen queue is first in, first out: the probe behind them is answered by it).
    begun = socket.create_connection(("127.0.0.1", int(r.port)), timeout=WAIT)
    begun.sendall(b"GET /api/good HTTP/1.1\r\n")
    fresh = socket.create_connection(("127.0.0.1", int(r.port)), timeout=WAIT)
    assert r.request("/api/good")[:2] == (200, b"good")

    code.write_text(code.read_text().replace('return "good"', 'return "better"'))
    r.wait_for("The app's new version is serving")
    # The old process handles its SIGUSR1 in its own time: until it says so, it still
    # keeps connections alive.
    r.wait_for("The new version takes over")
    begun.sendall(b"Host: x\r\n\r\n")
    fresh.sendall(b"GET /api/good HTTP/1.1\r\nHost: x\r\n\r\n")
    for sock in (begun, fresh):
        status, headers, body = read_reply(sock)
        assert (status, body) == (200, b"good")  # the old version had them
        assert headers.get("connection") == "close"
        assert sock.recv(1) == b""
    assert kept.recv(1) == b""  # closed at the handover, no request lost
    r.wait_for("] Stopped")
    assert r.request("/api/good")[:2] == (200, b"better")
    for sock in (kept, begun, fresh):
        sock.close()
    assert r.stop() == 0


def test_handover_with_a_silent_connection_is_not_an_abandonment(run, tmp_path):
    """A connection that never sends its request holds the old app process no longer
    than the grace period, and nothing was abandoned: it stops with exit code 0."""
    r, code = serve_copy(run, tmp_path, "--grace-period", "1")
    silent = socket.create_connection(("127.0.0.1", int(r.port)), timeout=WAIT)
    assert r.request("/api/good")[:2] == (200, b"good")  # behind it in the listen queue
    code.write_text(code.read_text().replace('return "good"', 'return "better"'))
    r.wait_for("The app's new version is serving")
    r.wait_for("] Stopped")
    assert silent.recv(1) == b""
    silent.close()
    assert "exited with code" not in r.output and "abandoned" not in r.output, r.output
    assert r.request("/api/good")[:2] == (200, b"better")
    assert r.stop() == 0


def test_no_watch(run, tmp_path):
    r, code = serve_copy(run, tmp_path, "--no-watch")
    code.write_text(code.read_text().replace('return "good"', 'return "better"'))
    wait_quiet(r, "The app changed")
    assert r.request("/api/good")[:2] == (200, b"good")
