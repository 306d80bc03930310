"""Restart on change for an app whose storage emulator `azfunc start` runs: Azurite
belongs to the supervisor, so the new version starts next to the serving one and gets
the same Azurite, and the queue trigger works after it."""
import json

import pytest

from storage_env import AZFUNC, Runner, wait_until
from test_storage_emulator import children, is_azurite
from test_storage_runner import _DevStorage, _emulator_ports_busy, blob_text, queue

pytestmark = pytest.mark.skipif(not AZFUNC.exists(), reason=f"{AZFUNC} not built")


def test_change_starts_the_new_version_on_the_same_azurite(storage_app):
    if _emulator_ports_busy():
        pytest.skip("something listens on 127.0.0.1:10000-10002")
    env = {"Storage": "UseDevelopmentStorage=true",
           "AzureWebJobsStorage": "UseDevelopmentStorage=true"}
    r = Runner(storage_app, env=env)
    try:
        r.wait_for("Host started")
        azurite = [k for k in children(r.proc.pid) if is_azurite(k)]
        code = storage_app / "function_app.py"
        code.write_text(code.read_text() + "\n# changed\n")
        r.wait_for("The app changed: starting it again (the current one serves until then)")
        r.wait_for("The app's new version is serving")
        assert r.output.count("Storage: started Azurite on 127.0.0.1:10000-10002") == 1
        assert "Storage: Azurite on 127.0.0.1:10000-10002, started by azfunc start before" \
            in r.output
        assert [k for k in children(r.proc.pid) if is_azurite(k)] == azurite
        queue(_DevStorage, "orders").send_message(json.dumps({"id": "r1", "item": "pie"}))
        text = wait_until("the blob output", lambda: blob_text(_DevStorage, "results", "r1.txt"))
        assert text.startswith("order r1 item pie")
    finally:
        assert r.stop() == 0, r.output
    wait_until("Azurite to stop", lambda: not _emulator_ports_busy(), timeout=30)
