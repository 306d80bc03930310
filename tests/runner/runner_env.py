"""The `azfunc start` process the runner and storage suites drive (tests import it from
here: pytest module basenames must be unique across suites, and no test imports conftest)."""

import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("AZF_BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
AZFUNC = BUILD / "bin" / "azfunc"
WAIT = 60  # seconds: generous, for sanitizer builds on a busy machine


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Runner:
    """One `azfunc start` process; its output is collected by a reader thread."""

    def __init__(self, app, *args, env=None, preexec_fn=None):
        self.port = free_port()
        e = dict(os.environ)
        # AZF_TEST_VENV: another Python's venv with the app's packages (scripts/app-venvs.sh).
        e["VIRTUAL_ENV"] = os.environ.get("AZF_TEST_VENV") or str(ROOT / ".venv")
        # CPython keeps some allocations for the process's life (ASan builds).
        e["LSAN_OPTIONS"] = f"suppressions={ROOT}/tests/python/lsan.supp:print_suppressions=0"
        e.pop("NO_COLOR", None)
        e.update(env or {})
        self.proc = subprocess.Popen(
            [str(AZFUNC), "start", str(app), "--port", str(self.port), *args],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, text=True,
            preexec_fn=preexec_fn)
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(line.rstrip("\n"))
                self.cv.notify_all()
        with self.cv:
            self.lines.append(None)  # end of output
            self.cv.notify_all()

    @property
    def output(self):
        with self.cv:
            return "\n".join(l for l in self.lines if l is not None)

    def count(self, text):
        """How many output lines contain `text` so far."""
        with self.cv:
            return sum(1 for l in self.lines if l is not None and text in l)

    def wait_for(self, text, count=1, timeout=WAIT):
        """Waits until `text` occurs in `count` output lines."""
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                if sum(1 for l in self.lines if l is not None and text in l) >= count:
                    return
                if None in self.lines:
                    raise AssertionError(f"exited before {text!r}:\n" + self.output)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(f"no {text!r} after {timeout}s:\n" + self.output)
                self.cv.wait(left)

    def started(self):
        self.wait_for("Host started")
        return self

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def request(self, path, method="GET", body=None, headers=None):
        req = urllib.request.Request(self.url(path), data=body, method=method,
                                     headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=WAIT) as r:
                return r.status, r.read(), r.headers
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers

    def stop(self, sig=signal.SIGTERM):
        """Stops the runner (the first SIGTERM or SIGINT is a graceful stop; killed if it
        does not end within WAIT) and returns its exit code once all output is read."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(WAIT)
        with self.cv:
            self.cv.wait_for(lambda: None in self.lines, timeout=WAIT)
        if None in self.lines:
            self.proc.stdout.close()
        return self.proc.returncode
