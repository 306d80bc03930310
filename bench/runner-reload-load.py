"""Restart on change under load: 4 clients loop over fresh connections (one GET each) on
`examples/hello` while its code is changed RESTARTS times, two seconds apart, each time
waiting until the new version serves. Counts every answer by status and every failed
request by exception, so a request lost in a handover shows.

    AZF_BUILD_DIR=build .venv/bin/python bench/runner-reload-load.py [RESTARTS]
"""
import collections
import http.client
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("AZF_BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD
CLIENTS = 4


def main():
    restarts = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    tmp = tempfile.TemporaryDirectory()
    app = Path(tmp.name) / "app"
    shutil.copytree(ROOT / "examples" / "hello", app)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, VIRTUAL_ENV=str(ROOT / ".venv"))
    proc = subprocess.Popen([str(BUILD / "bin" / "azfunc"), "start", str(app), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines = []
    threading.Thread(target=lambda: [lines.append(l) for l in proc.stdout], daemon=True).start()
    served = lambda: sum("The app's new version is serving" in l for l in lines)
    counts, stop = collections.Counter(), threading.Event()

    def client():
        while not stop.is_set():
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                c.request("GET", "/api/hello?name=x")
                r = c.getresponse()
                r.read()
                counts[r.status] += 1
                c.close()
            except Exception as e:  # a lost request: counted by kind
                counts[type(e).__name__] += 1

    try:
        deadline = time.monotonic() + 60
        while not any("Host started" in l for l in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
        for t in threads:
            t.start()
        for i in range(restarts):
            time.sleep(2)
            before = served()
            with open(app / "HttpHello" / "__init__.py", "a") as f:
                f.write(f"\n# change {i}\n")
            deadline = time.monotonic() + 60
            while served() == before and time.monotonic() < deadline:
                time.sleep(0.05)
        time.sleep(1)
        stop.set()
        for t in threads:
            t.join()
    finally:
        stop.set()
        proc.terminate()
        proc.wait(60)
    print(f"{dict(counts)}; new versions serving: {served()} of {restarts}")


if __name__ == "__main__":
    main()
