"""Fixtures for the deployment tests: libazfunc installed into a prefix
(`cmake --install BUILD --prefix TMP`), the Pythons it has adapters for, and apps
whose dependencies live only in .python_packages."""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "host"))
import azhost  # noqa: E402

APPS = Path(__file__).resolve().parent / "apps"


def build_dir():
    return azhost.build_dir()


def pythons():
    """{"3.12": "/path/to/python3.12"} for every adapter the build made."""
    f = build_dir() / "python-versions.txt"
    if not f.exists():
        return {}
    return dict(line.split(" ", 1) for line in f.read_text().splitlines() if line.strip())


VERSIONS = sorted(pythons(), key=lambda v: tuple(map(int, v.split("."))))


@pytest.fixture(scope="session")
def prefix(tmp_path_factory):
    """libazfunc installed as an operator installs it."""
    p = tmp_path_factory.mktemp("prefix")
    subprocess.run(["cmake", "--install", str(build_dir()), "--prefix", str(p)], check=True,
                   stdout=subprocess.DEVNULL, timeout=300)
    return p


@pytest.fixture(scope="session")
def worker_dir(prefix):
    return prefix / "share" / "azfunc" / "workers" / "python"


@pytest.fixture(scope="session")
def worker_config(worker_dir):
    return json.loads((worker_dir / "worker.config.json").read_text())


def bundled(prefix, version):
    return prefix / "lib" / "azfunc" / f"python{version}" / "site-packages"


def make_app(tmp_path, name, version, prefix):
    """A copy of tests/deploy/apps/<name> whose azure-functions (copied from the
    bundle for that Python) and `greeting` dependency are only in
    .python_packages/lib/site-packages, as a remote build lays them out."""
    app = tmp_path / name
    shutil.copytree(APPS / name, app)
    site = app / ".python_packages" / "lib" / "site-packages"
    site.mkdir(parents=True)
    src = bundled(prefix, version)
    for entry in src.iterdir():
        if entry.name.startswith(("azure", "werkzeug", "markupsafe")):
            (shutil.copytree if entry.is_dir() else shutil.copy)(entry, site / entry.name)
    (site / "greeting.py").write_text('def hello(name):\n    return f"Hello, {name}!"\n')
    return app


def plain_env(**extra):
    """A plain shell's environment: no venv, no PYTHONPATH, a bare PATH."""
    env = {"PATH": "/usr/bin:/bin", "HOME": os.path.expanduser("~")}
    env.update(extra)
    return env


class Runner:
    """`azfunc start` in the background; its stdout collected by a reader thread."""

    def __init__(self, prefix, app, *args, env=None):
        self.port = azhost.free_port()
        argv = [str(prefix / "bin" / "azfunc"), "start", str(app), "--port", str(self.port), *args]
        self.proc = subprocess.Popen(argv, env=env or plain_env(), stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        self._queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, ""):
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, pattern, timeout=60):
        """The first new line matching pattern; bounded in time (and ends with the process)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                line = None
            if line is None:
                raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines))
            self.lines.append(line)
            if re.search(pattern, line):
                return line + "\n"

    def get(self, path):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=30) as r:
            return r.read().decode()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
