"""HTTP streaming memory bench: a 1 GiB response streamed through azfunc-worker's HTTP
server (docs/http-streaming.md) while the worker's resident set size is sampled.

The host simulator (tests/host/azhost.py) starts azfunc-worker with
PYTHON_ENABLE_INIT_INDEXING=1 on tests/apps/stream_v2, then plays the host's proxy
(tests/host/httpproxy.py): GET /api/bytes/<MiB> with x-ms-invocation-id, the response read
in 1 MiB pieces and thrown away. A sampler thread reads VmRSS of the worker every 20 ms.
Prints the baseline RSS (after one warm-up request), the peak while streaming, the peak
extra, and the throughput.

    AZF_BUILD_DIR=build .venv/bin/python bench/http-stream/stream_rss.py [MiB] [runs]
"""
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "host"))
import azhost  # noqa: E402
import httpproxy  # noqa: E402
from azhost import pb  # noqa: E402


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stream(h, uri, function_id, mib):
    inv = h.start_invocation(function_id, [pb.ParameterBinding(
        name="req", data=pb.TypedData(http=pb.RpcHttp(params={"mb": str(mib)})))])
    conn = httpproxy.send(uri, "GET", f"/api/bytes/{mib}", inv.id)
    resp = conn.getresponse()
    total = 0
    while True:
        piece = resp.read(1 << 20)
        if not piece:
            break
        total += len(piece)
    conn.close()
    r = inv.wait(600)
    assert r.result.status == 1, r.result.exception.message
    assert total == mib << 20, total
    return total


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    runs = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    tmp = Path(tempfile.mkdtemp())
    try:
        app = tmp / "stream_v2"
        shutil.copytree(ROOT / "tests" / "apps" / "stream_v2", app)
        with azhost.Host(azhost.worker_path(), app_dir=app, timeout=600,
                         env={"PYTHON_ENABLE_INIT_INDEXING": "1"}) as h:
            init = h.init(function_app_directory=app)
            uri = init.capabilities["HttpUri"]
            md = h.metadata(function_app_directory=app)
            h.load_indexed(md)
            fid = {f.name: f.function_id for f in md.function_metadata_results}["many_bytes"]
            pid = h.process.proc.pid if hasattr(h.process, "proc") else h.process.pid
            stream(h, uri, fid, 16)  # warm-up: imports, first-request allocations
            for run in range(runs):
                base = rss_kib(pid)
                peak = [base]
                done = threading.Event()

                def sample():
                    while not done.wait(0.02):
                        peak[0] = max(peak[0], rss_kib(pid))
                t = threading.Thread(target=sample, daemon=True)
                t.start()
                t0 = time.monotonic()
                total = stream(h, uri, fid, mib)
                secs = time.monotonic() - t0
                done.set()
                t.join()
                print(f"run {run + 1}: {total >> 20} MiB in {secs:.1f} s "
                      f"({total / secs / (1 << 20):.0f} MiB/s); worker RSS baseline "
                      f"{base / 1024:.1f} MiB, peak {peak[0] / 1024:.1f} MiB, "
                      f"peak extra {(peak[0] - base) / 1024:.1f} MiB", flush=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
