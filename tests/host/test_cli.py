"""azfunc-worker's command line: both argument families of §2.1, precedence, unknown flags."""

import re
import subprocess

import pytest

import azhost
from azhost import SUCCESS, kind, new_id


def converse(h):
    """StartStream with the host's ids, then init and a status probe."""
    assert h.received[0].start_stream.worker_id == h.worker_id
    assert h.init().result.status == SUCCESS
    h.status()
    assert all(m.request_id == h.request_id for m in h.received if kind(m) != "worker_status_response")


@pytest.mark.parametrize("families", [("legacy",), ("functions",), ("legacy", "functions")])
def test_argument_family(make_host, worker_exe, families):
    converse(make_host(worker_exe, families=families))


def test_functions_family_wins_over_legacy(make_host, worker_exe):
    # Every legacy value is wrong: a dead port, other ids, a max length too small for init.
    h = make_host(worker_exe, overrides={"--port": str(azhost.free_port()), "--workerId": new_id(),
                                         "--requestId": new_id(), "--grpcMaxMessageLength": "16"})
    converse(h)


def test_functions_uri_without_trailing_slash(make_host, worker_exe):
    converse(make_host(worker_exe, families=("functions",), overrides={"--functions-uri": "http://127.0.0.1:{port}"}))


def test_unknown_flags_and_host_style_extras_are_ignored(make_host, worker_exe):
    # Interpreter arguments and a worker path as the host puts them before its own (§2.1/§2.2),
    # a switch without a value and flags a future host may add.
    # The switch comes last, right before --host: it must not swallow it.
    extra = ["-X", "no_debug_ranges", "worker.py", "--log-level", "INFO", "--future-flag=value",
             "--another-future-flag", "x", "--future-switch"]
    converse(make_host(worker_exe, extra_args=extra))


@pytest.mark.parametrize("flag", ["--help", "--version"])
def test_help_and_version_exit_zero(worker_exe, flag):
    r = subprocess.run([str(worker_exe), flag], capture_output=True, text=True, timeout=azhost.TIMEOUT)
    assert r.returncode == 0, r
    out = r.stdout + r.stderr
    if flag == "--help":
        assert "--functions-uri" in out and "--host" in out, out
    else:
        assert re.search(r"\d+\.\d+\.\d+", out), out


def test_host_unreachable_fails_within_connect_timeout(app_dir, worker_exe):
    port = azhost.free_port()  # nothing listens there
    w = azhost.spawn_worker(port, worker=worker_exe, app_dir=app_dir, worker_id=new_id(), request_id=new_id())
    try:
        w.assert_error_exit(r"connect|refused|unreachable")
    finally:
        w.kill()


@pytest.mark.parametrize("args, pattern", [
    (["--functions-uri", "ftp://127.0.0.1:1/", "--functions-worker-id", "w"], r"functions-uri"),
    (["--functions-uri", "http://127.0.0.1:1/"], r"worker id"),
    (["--host", "127.0.0.1", "--port", "not-a-port", "--workerId", "w"], r"port"),
    (["--functions-uri", "http://127.0.0.1:1/", "--functions-worker-id", "w",
      "--functions-grpc-max-message-length", "lots"], r"length"),
], ids=["bad-uri", "no-worker-id", "bad-port", "bad-max-length"])
def test_bad_arguments_exit_2_with_a_message(worker_exe, app_dir, args, pattern):
    r = subprocess.run([str(worker_exe)] + args, capture_output=True, text=True, cwd=app_dir,
                       timeout=azhost.TIMEOUT)
    assert r.returncode == 2, r
    assert re.search(pattern, r.stderr), r


def test_tls_trust_from_environment(make_host, worker_exe, tls):
    h = make_host(worker_exe, tls=tls, start=False, env={"AZF_TLS_CA_FILE": str(tls.ca_file)})
    h.extra_args = []  # no --tls-ca-file: the environment names the CA
    h.start()
    converse(h)


def test_tls_server_name_selects_the_certificate_name(make_host, worker_exe, tmp_path):
    tls = azhost.Tls(tmp_path, hostname="host.example")  # not 127.0.0.1
    h = make_host(worker_exe, tls=tls, start=False)
    h.extra_args += ["--tls-server-name", "host.example"]
    h.start()
    converse(h)
