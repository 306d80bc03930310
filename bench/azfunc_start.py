"""`azfunc start` for the Python benchmarks: the build's binary (AZF_BUILD_DIR, default
build/), the project's venv, a free loopback port, and the output drained once it listens
(so a chatty run never blocks on a full pipe)."""
import os
import socket
import subprocess
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("AZF_BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD


def start(app, *args):
    """Runs `azfunc start APP --port PORT ARGS...`; returns (process, port) once the host
    has started."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, VIRTUAL_ENV=str(ROOT / ".venv"))
    proc = subprocess.Popen(
        [str(BUILD / "bin" / "azfunc"), "start", str(app), "--port", str(port), *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    for line in proc.stdout:
        if "Host started" in line:
            break
    else:
        raise RuntimeError(f"azfunc start {app} exited ({proc.wait()}) before it started")
    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc, port
