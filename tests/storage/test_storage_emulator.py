"""The lifetime of the Azurite that `azfunc start` runs for development storage: it
belongs to the supervisor, so it outlives a crash of the app process (the restarted app
gets the same one) and stops when azfunc start stops, however that happens: SIGTERM,
SIGINT (test_storage_runner.py), or the supervisor killed by SIGKILL."""
import json
import os
import signal

import pytest

from storage_env import AZFUNC, Runner, wait_until
from test_storage_runner import _DevStorage, _emulator_ports_busy, blob_text, http, queue

pytestmark = pytest.mark.skipif(not AZFUNC.exists(), reason=f"{AZFUNC} not built")

ENV = {"Storage": "UseDevelopmentStorage=true",
       "AzureWebJobsStorage": "UseDevelopmentStorage=true"}


def children(pid):
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            return [int(c) for c in f.read().split()]
    except OSError:
        return []


def is_azurite(pid):
    """A child of the supervisor that is not an app process (azfunc itself)."""
    try:
        return os.path.realpath(f"/proc/{pid}/exe") != os.path.realpath(AZFUNC)
    except OSError:
        return False


def alive(pid):
    """Running (a zombie, or a pid gone, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def start(app):
    if _emulator_ports_busy():
        pytest.skip("something listens on 127.0.0.1:10000-10002")
    r = Runner(app, "--no-watch", env=ENV)
    try:
        r.wait_for("Host started")
        assert "Storage: started Azurite on 127.0.0.1:10000-10002" in r.output, r.output
        kids = children(r.proc.pid)
        azurite = [k for k in kids if is_azurite(k)]
        apps = [k for k in kids if not is_azurite(k)]
        assert len(azurite) == 1 and len(apps) == 1, (kids, r.output)
    except BaseException:
        r.stop()
        raise
    return r, azurite[0], apps[0]


def test_azurite_outlives_an_app_crash_and_dies_with_a_killed_supervisor(storage_app):
    r, azurite, app = start(storage_app)
    try:
        # Answered by its loop: it has told the supervisor it serves (a process killed
        # before that is an app that cannot start, which is not restarted).
        assert http(r, "GET", "nothing")[0] == 404
        os.kill(app, signal.SIGKILL)  # as the OOM killer would (sanitizers catch SIGSEGV)
        r.wait_for("The app process was killed by signal 9")
        r.wait_for("Host started", count=2)
        assert "Storage: Azurite on 127.0.0.1:10000-10002, started by azfunc start before" \
            in r.output, r.output
        assert r.output.count("Storage: started Azurite") == 1
        assert alive(azurite) and azurite in children(r.proc.pid)
        queue(_DevStorage, "orders").send_message(json.dumps({"id": "c1", "item": "jam"}))
        text = wait_until("the blob output", lambda: blob_text(_DevStorage, "results", "c1.txt"))
        assert text.startswith("order c1 item jam")
        r.proc.kill()  # the supervisor, with no chance to clean up
        r.proc.wait(30)
        wait_until("Azurite to stop", lambda: not alive(azurite), timeout=30)
        wait_until("its ports to close", lambda: not _emulator_ports_busy(), timeout=30)
    finally:
        r.stop()
        if alive(azurite):
            os.kill(azurite, signal.SIGKILL)


def test_azurite_is_stopped_when_azfunc_start_is_terminated(storage_app):
    r, azurite, _ = start(storage_app)
    try:
        r.proc.terminate()
        assert r.proc.wait(60) == 0, r.output
        assert not alive(azurite)  # stopped and reaped before azfunc start exits
        assert not _emulator_ports_busy()
    finally:
        r.stop()
        if alive(azurite):
            os.kill(azurite, signal.SIGKILL)
