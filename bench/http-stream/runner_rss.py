"""HTTP streaming through `azfunc start`: a large response proxied by the runner from the
app's own server to a client that reads slowly, while the resident set size of azfunc
start's processes (the supervisor and the app process with the runner's HTTP front, Python
and the app's server) is sampled.

    AZF_BUILD_DIR=build .venv/bin/python bench/http-stream/runner_rss.py [MiB] [ms per MiB]
"""
import http.client
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import azfunc_start  # noqa: E402


def rss_kib(pid):
    """VmRSS of pid and its descendants (azfunc start supervises the app in a child)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return total
    return total + sum(rss_kib(c) for c in children)


def peak_rss_during(pid, work):
    """Runs work(); returns its result, the seconds it took, and pid's RSS (KiB) before
    and at its peak while it ran (sampled every 20 ms)."""
    base = rss_kib(pid)
    peak = [base]
    done = threading.Event()

    def sample():
        while not done.wait(0.02):
            peak[0] = max(peak[0], rss_kib(pid))
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        result = work()
    finally:
        done.set()
        t.join()
    return result, time.monotonic() - t0, base, peak[0]


def fetch(port, mib, pause):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("GET", f"/api/bytes/{mib}")
    resp = conn.getresponse()
    assert resp.status == 200, resp.status
    total = 0
    while True:
        piece = resp.read(1 << 20)
        if not piece:
            break
        total += len(piece)
        time.sleep(pause)
    conn.close()
    assert total == mib << 20, total
    return total


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    pause = (int(sys.argv[2]) if len(sys.argv) > 2 else 10) / 1000
    tmp = Path(tempfile.mkdtemp())
    app = tmp / "stream_v2"
    shutil.copytree(ROOT / "tests" / "apps" / "stream_v2", app)
    proc, port = azfunc_start.start(app)
    try:
        fetch(port, 16, 0)  # warm-up
        total, secs, base, peak = peak_rss_during(proc.pid, lambda: fetch(port, mib, pause))
        print(f"{total >> 20} MiB to a client pausing {pause * 1000:.0f} ms per MiB in {secs:.1f} s; "
              f"azfunc start processes' RSS baseline {base / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, "
              f"peak extra {(peak - base) / 1024:.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
