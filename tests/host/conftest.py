"""Fixtures: `host` (azfunc-worker over h2c and TLS, stream accepted), `make_host`, `tls`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import azhost  # noqa: E402



@pytest.fixture
def app_dir(tmp_path):
    """An empty app root (no function_app.py): a v1-style app."""
    d = tmp_path / "app"
    d.mkdir()
    return d


@pytest.fixture
def tls(tmp_path):
    """A CA and a server certificate for 127.0.0.1, generated for this test."""
    d = tmp_path / "tls"
    d.mkdir()
    return azhost.Tls(d)


@pytest.fixture
def worker_exe():
    """The azfunc-worker under test; a missing binary fails the test, never skips it."""
    try:
        return azhost.worker_path()
    except azhost.HostError as e:
        pytest.fail(str(e))


@pytest.fixture
def make_host(app_dir):
    """make_host(worker=..., tls=..., start=True, ...) → Host; all are closed and checked at teardown."""
    hosts = []

    def make(worker=None, start=True, check=True, **kw):
        kw.setdefault("app_dir", app_dir)
        h = azhost.Host(worker or azhost.worker_path(), **kw)
        h.check_at_teardown = check
        hosts.append(h)
        if start:
            h.start()
        return h

    yield make
    for h in hosts:
        try:
            h.close()
        finally:
            # Worker output helps whoever reads a failure; pytest shows it only then.
            if h.process is not None:
                print(f"worker {h.process.argv}\n{h.process.output(200)}")
    for h in hosts:
        if h.check_at_teardown:
            h.check()


@pytest.fixture(params=["h2c", "tls"])
def host(request, make_host, worker_exe):
    """azfunc-worker spawned by the host simulator, stream accepted; once over h2c, once over TLS."""
    tls = request.getfixturevalue("tls") if request.param == "tls" else None
    return make_host(worker_exe, tls=tls)
