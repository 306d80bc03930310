"""Restart on change for an app whose storage emulator `azfunc start` runs: Azurite
stops with the app process that started it, so the app is stopped and started again
(with a new Azurite) rather than overlapped, and the queue trigger works after it."""
import json

import pytest

from storage_env import AZFUNC, Runner, wait_until
from test_storage_runner import _DevStorage, _emulator_ports_busy, blob_text, queue

pytestmark = pytest.mark.skipif(not AZFUNC.exists(), reason=f"{AZFUNC} not built")


def test_change_restarts_the_app_with_its_azurite(storage_app):
    if _emulator_ports_busy():
        pytest.skip("something listens on 127.0.0.1:10000-10002")
    env = {"Storage": "UseDevelopmentStorage=true",
           "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    r = Runner(storage_app, env=env)
    try:
        r.wait_for("Host started")
        code = storage_app / "function_app.py"
        code.write_text(code.read_text() + "\n# changed\n")
        r.wait_for("The app changed: restarting it (with the storage emulator it started")
        r.wait_for("Host started", count=2)
        assert r.output.count("Storage: started Azurite on 127.0.0.1:10000-10002") == 2
        queue(_DevStorage, "orders").send_message(json.dumps({"id": "r1", "item": "pie"}))
        text = wait_until("the blob output", lambda: blob_text(_DevStorage, "results", "r1.txt"))
        assert text.startswith("order r1 item pie")
    finally:
        assert r.stop() == 0, r.output
    wait_until("Azurite to stop", lambda: not _emulator_ports_busy(), timeout=30)
