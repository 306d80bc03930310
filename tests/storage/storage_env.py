"""A real Azurite for the storage tests, on loopback ports it picks itself (port 0), and
an `azfunc start` runner. Every wait is bounded."""
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runner"))
from runner_env import AZFUNC, ROOT, WAIT, Runner  # noqa: E402,F401  (re-exported)

AZURITE = Path(os.environ.get("AZF_AZURITE",
                              ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite"))
APPS = Path(__file__).resolve().parent / "apps"
KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
       "K1SZFPTOtr/KBHBeksoGMGw==")


def wait_until(what, check, timeout=WAIT, interval=0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


class Azurite:
    def __init__(self, data):
        self.log = data / "azurite.log"
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen(
                [str(AZURITE), "--silent", "--disableTelemetry", "--skipApiVersionCheck",
                 "--location", str(data), "--blobHost", "127.0.0.1", "--blobPort", "0",
                 "--queueHost", "127.0.0.1", "--queuePort", "0", "--tableHost", "127.0.0.1",
                 "--tablePort", "0"], stdout=out, stderr=subprocess.STDOUT)

        def ports():
            text = self.log.read_text()
            found = {s: re.search(rf"Azurite {s} service is successfully listening at "
                                  rf"http://127\.0\.0\.1:(\d+)", text)
                     for s in ("Blob", "Queue", "Table")}
            assert self.proc.poll() is None, text
            return {s: int(m.group(1)) for s, m in found.items()} if all(found.values()) else None

        self.ports = wait_until("Azurite to listen", ports)
        self.connection_string = (
            "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
            f"AccountKey={KEY};"
            f"BlobEndpoint=http://127.0.0.1:{self.ports['Blob']}/devstoreaccount1;"
            f"QueueEndpoint=http://127.0.0.1:{self.ports['Queue']}/devstoreaccount1;"
            f"TableEndpoint=http://127.0.0.1:{self.ports['Table']}/devstoreaccount1;")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    if not AZURITE.exists():
        pytest.skip(f"{AZURITE} missing: run scripts/setup.sh")
    a = Azurite(tmp_path_factory.mktemp("azurite"))
    yield a
    a.stop()


@pytest.fixture
def storage_app(tmp_path):
    """A fresh copy of the storage app (its .azfunc/ receipts start empty)."""
    dst = tmp_path / "app"
    shutil.copytree(APPS / "storage_app", dst)
    return dst
