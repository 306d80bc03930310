"""`azfunc start` end to end: the examples and the apps in tests/runner/apps served over
real HTTP on loopback, with real Python functions. Waits are bounded and generous; no
assertion depends on timing."""

import http.client
import json
import signal
import socket
import threading
from pathlib import Path

import pytest

from runner_env import AZFUNC, ROOT, WAIT, Runner, free_port  # noqa: F401  (re-exported)

EXAMPLES = ROOT / "examples"
APPS = Path(__file__).resolve().parent / "apps"

pytestmark = pytest.mark.skipif(not AZFUNC.exists(), reason=f"{AZFUNC} not built")


@pytest.fixture
def start():
    runners = []

    def make(app, *args, env=None, wait=True):
        r = Runner(app, *args, env=env)
        runners.append(r)
        return r.started() if wait else r

    yield make
    for r in runners:
        if r.proc.poll() is None:
            r.proc.kill()
            r.proc.wait()


def test_v1_hello(start):
    r = start(EXAMPLES / "hello")
    assert "HttpHello: [GET,POST] http://localhost:%d/api/hello" % r.port in r.output
    status, body, headers = r.request("/api/hello?name=user")
    assert (status, body) == (200, b"Hello, user!")
    status, body, _ = r.request("/api/hello", "POST", json.dumps({"name": "Ada"}).encode(),
                                {"Content-Type": "application/json"})
    assert (status, body) == (200, b"Hello, Ada!")
    status, body, _ = r.request("/api/hello")
    assert status == 400
    # One start and one end line per invocation, with the user's log in between.
    r.wait_for("Executed 'Functions.HttpHello' (Succeeded, Id=", 2)
    r.wait_for("Python HTTP trigger function processed a request.", 3)
    assert r.stop() == 0


def test_v1_entry_point(start):
    r = start(EXAMPLES / "v1-entry-point")
    assert r.request("/api/Greet?name=Bo")[:2] == (
        200, b"Greetings, Bo, from an alternative entry point!")


def test_v2_routes_methods_templates(start):
    r = start(EXAMPLES / "hello-v2")
    assert r.request("/api/hello?name=v2")[:2] == (200, b"Hello, v2!")
    assert r.request("/api/products/5")[:2] == (200, b"product 5 in all")
    assert r.request("/api/products/5/shoes")[:2] == (200, b"product 5 in shoes")
    assert r.request("/api/products/five")[0] == 404  # {id:int}
    status, body, headers = r.request("/api/files/a/b/c.txt")  # {*path}, bare str return
    assert (status, body) == (200, b"file a/b/c.txt")
    assert headers["Content-Type"].startswith("text/plain")
    assert r.request("/api/hello", "DELETE")[0] == 405
    assert r.request("/api/products/5", "POST")[0] == 405
    assert r.request("/api/nothing-here")[0] == 404
    assert r.request("/hello")[0] == 404  # outside the route prefix
    status, body, headers = r.request("/api/echo", "POST", b"\x00\x01body",
                                      {"X-Test": "header value"})
    assert (status, body) == (201, b"\x00\x01body")
    assert headers["X-Echo-Header"] == "header value"
    assert headers["Set-Cookie"] == "session=abc; path=/; httponly"


def test_blueprint(start):
    r = start(EXAMPLES / "blueprint")
    assert r.request("/api/blueprint/Cy")[:2] == (200, b"Hello, Cy, from a blueprint!")
    assert r.request("/api/main")[:2] == (200, b"from the app")


def test_route_prefix_query_cookies(start):
    r = start(APPS / "prefix")
    status, body, headers = r.request("/custom/v1/ping/7?q=x&empty=", "GET",
                                      headers={"Cookie": "a=1; b=2"})
    assert (status, body) == (200, b"pong 7 x a=1; b=2")
    assert headers["X-Method"] == "GET"
    assert r.request("/api/ping/7")[0] == 404


def test_body_limit(start):
    r = start(EXAMPLES / "hello-v2", "--max-body-size", "1000")
    assert r.request("/api/echo", "POST", b"x" * 1000)[:2] == (201, b"x" * 1000)
    assert r.request("/api/echo", "POST", b"x" * 5000)[0] == 413


def test_keep_alive(start):
    r = start(EXAMPLES / "hello-v2")
    conn = http.client.HTTPConnection("127.0.0.1", r.port, timeout=WAIT)
    conn.request("GET", "/api/hello?name=one")
    first = conn.getresponse()
    assert first.read() == b"Hello, one!"
    sock = conn.sock
    for i in range(5):
        conn.request("GET", f"/api/hello?name={i}")
        resp = conn.getresponse()
        assert resp.read() == f"Hello, {i}!".encode()
    assert conn.sock is sock  # one TCP connection served every request
    conn.close()


def test_concurrent_requests(start):
    r = start(EXAMPLES / "async")
    results = []

    def slow():
        results.append(r.request("/api/sleep?seconds=3")[:2])

    threads = [threading.Thread(target=slow) for _ in range(4)]
    for t in threads:
        t.start()
    r.wait_for("Executing 'Functions.sleep'", 4)
    # While four invocations are in flight, the server still answers.
    assert r.request("/api/nothing")[0] == 404
    assert any(t.is_alive() for t in threads)
    for t in threads:
        t.join(WAIT)
    assert results == [(200, b"slept 3.0s on the event loop")] * 4


def test_timer_fires_and_run_on_startup(start):
    r = start(EXAMPLES / "timer")
    assert "every_second: timerTrigger" in r.output
    r.wait_for("Executing 'Functions.every_second' (Reason='Timer fired at startup")
    r.wait_for("Executing 'Functions.every_second' (Reason='Timer fired at 20", 2)
    r.wait_for("tick (past due:", 3)
    r.wait_for("Executed 'Functions.every_second' (Succeeded", 3)
    assert r.stop() == 0


def test_admin_endpoint(start):
    r = start(EXAMPLES / "timer")
    status, _, _ = r.request("/admin/functions/every_five_minutes", "POST",
                             json.dumps({"input": ""}).encode(),
                             {"Content-Type": "application/json"})
    assert status == 202
    r.wait_for("Executed 'Functions.every_five_minutes' (Succeeded")
    r.wait_for("five minutes passed")
    assert r.request("/admin/functions/missing", "POST", b"{}")[0] == 404
    assert r.request("/admin/functions/every_five_minutes", "POST", b"[1]")[0] == 400


def test_admin_refuses_http_functions(start):
    r = start(EXAMPLES / "hello-v2")
    assert r.request("/admin/functions/hello", "POST", b'{"input": "x"}')[0] == 400


def test_environment_wins_over_local_settings(start):
    # A variable that is already set is kept, as Core Tools does.
    r = start(EXAMPLES / "env-vars", env={"GREETING": "from the environment"})
    assert "Skipping 'GREETING' from local settings" in r.output
    assert r.request("/api/setting/GREETING")[:2] == (200, b"from the environment")


def test_local_settings_reach_the_app(start, monkeypatch):
    monkeypatch.delenv("GREETING", raising=False)
    r = start(EXAMPLES / "env-vars")
    assert r.request("/api/setting/GREETING")[:2] == (200, b"Hello from local.settings.json")
    assert r.request("/api/setting/ConnectionStrings:Db")[:2] == (200, b"Server=localhost")
    assert r.request("/api/setting/NOT_SET_ANYWHERE")[0] == 404


def test_logging_from_a_background_thread(start):
    r = start(EXAMPLES / "logging-thread")
    assert r.request("/api/work")[:2] == (200, b"done")
    r.wait_for("hello from a background thread")


def test_broken_functions_next_to_healthy_ones(start):
    r = start(APPS / "broken_v1")
    out = r.output
    assert "BadJson/function.json:3:28: invalid JSON" in out
    assert "Function 'ImportError' cannot run: ModuleNotFoundError: No module named " \
           "'module_that_does_not_exist'" in out
    assert r.request("/api/Good")[:2] == (200, b"still healthy")
    assert r.request("/api/ImportError")[0] == 500
    r.wait_for("Executed 'Functions.Good' (Succeeded")


def test_app_that_fails_to_index(start):
    r = start(APPS / "broken_index")
    assert "The function app failed to index: RuntimeError: the app refuses to import" in r.output
    assert r.request("/api/anything")[0] == 404
    assert r.stop() == 0


def test_settings_errors_are_precise(start):
    r = start(APPS / "bad_host_json", wait=False)
    assert r.proc.wait(timeout=WAIT) == 1
    r.wait_for("bad_host_json/host.json:4:33: invalid JSON")
    r = start(APPS / "encrypted", wait=False)
    assert r.proc.wait(timeout=WAIT) == 1
    r.wait_for("local.settings.json: IsEncrypted is true")


def test_graceful_shutdown_answers_in_flight(start):
    r = start(EXAMPLES / "async")
    result = []
    t = threading.Thread(target=lambda: result.append(r.request("/api/sleep?seconds=2")[:2]))
    t.start()
    r.wait_for("Executing 'Functions.sleep'")
    r.proc.send_signal(signal.SIGTERM)
    t.join(WAIT)
    assert result == [(200, b"slept 2.0s on the event loop")]
    assert r.proc.wait(timeout=WAIT) == 0
    r.wait_for("Stopped")


def test_sigint_exits_zero(start):
    r = start(EXAMPLES / "hello")
    assert r.stop(signal.SIGINT) == 0


def test_no_colour_without_a_terminal(start):
    r = start(EXAMPLES / "hello")
    r.request("/api/hello?name=x")
    r.wait_for("Executed 'Functions.HttpHello'")
    assert "\033[" not in r.output


def test_client_gone_before_the_reply(start):
    r = start(EXAMPLES / "async")
    s = socket.create_connection(("127.0.0.1", r.port))
    s.sendall(b"GET /api/sleep?seconds=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    r.wait_for("Executing 'Functions.sleep'")
    s.close()  # the invocation completes with nobody to answer
    r.wait_for("Executed 'Functions.sleep' (Succeeded")
    assert r.request("/api/sleep?seconds=0")[0] == 200
    assert r.stop() == 0
