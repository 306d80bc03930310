"""A real Azurite for the storage tests, on loopback ports it picks itself (port 0), and
an `azfunc start` runner. Every wait is bounded."""
import os
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("AZF_BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
AZFUNC = BUILD / "bin" / "azfunc"
AZURITE = Path(os.environ.get("AZF_AZURITE",
                              ROOT / "tools" / "azurite" / "node_modules" / ".bin" / "azurite"))
APPS = Path(__file__).resolve().parent / "apps"
WAIT = 60  # seconds: generous, for sanitizer builds on a busy machine
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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """One `azfunc start` process; its output is collected by a reader thread."""

    def __init__(self, app, *args, env=None):
        self.port = free_port()
        e = dict(os.environ)
        e["VIRTUAL_ENV"] = str(ROOT / ".venv")
        e["LSAN_OPTIONS"] = f"suppressions={ROOT}/tests/python/lsan.supp:print_suppressions=0"
        e.update(env or {})
        self.proc = subprocess.Popen(
            [str(AZFUNC), "start", str(app), "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, text=True)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)
            self.cv.notify_all()

    @property
    def output(self):
        with self.cv:
            return "\n".join(l for l in self.lines if l is not None)

    def count(self, text):
        with self.cv:
            return sum(1 for l in self.lines if l is not None and text in l)

    def wait_for(self, text, count=1, timeout=WAIT):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                if sum(1 for l in self.lines if l is not None and text in l) >= count:
                    return
                if None in self.lines:
                    raise AssertionError(f"exited before {text!r}:\n" + self.output)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"timed out waiting for {text!r}:\n" + self.output)
                self.cv.wait(left)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        with self.cv:
            self.cv.wait_for(lambda: None in self.lines, timeout=WAIT)
        self.proc.stdout.close()
        return self.proc.returncode


@pytest.fixture
def storage_app(tmp_path):
    """A fresh copy of the storage app (its .azfunc/ receipts start empty)."""
    dst = tmp_path / "app"
    shutil.copytree(APPS / "storage_app", dst)
    return dst
