"""Request-body memory under `azfunc start`: POST a body of N MiB to a function that
returns len(body), and record the peak extra resident set size of the app process and
of the supervisor over their idle sizes, as a multiple of the body size.

    AZF_BUILD_DIR=build .venv/bin/python bench/runner-body-memory.py [RUNS] [MiB...]

Each run starts a fresh `azfunc start` (so no run inherits another's heap), sends a 1 MiB
warm-up request, takes each process's VmRSS as its idle size, resets its peak (VmHWM,
by writing 5 to /proc/PID/clear_refs), sends the body in 1 MiB pieces and reads VmHWM
once the reply is in; the function also reports the app process's VmRSS while it runs
(what stays held while user code works on the body). Prints every run and the medians.
"""
import http.client
import statistics
import sys
import tempfile
from pathlib import Path

import azfunc_start

APP = '''import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="len", methods=["POST"])
def length(req: func.HttpRequest) -> str:
    with open("/proc/self/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return f"{len(req.get_body())} {rss}"
'''
PIECE = b"x" * (1 << 20)


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def children(pid):
    with open(f"/proc/{pid}/task/{pid}/children") as f:
        return [int(c) for c in f.read().split()]


def post(port, mib):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
    conn.request("POST", "/api/len", body=(PIECE for _ in range(mib)),
                 headers={"Content-Length": str(mib << 20)})
    resp = conn.getresponse()
    text = resp.read().decode()
    conn.close()
    assert resp.status == 200 and text.split()[0] == str(mib << 20), (resp.status, text)
    return int(text.split()[1])  # the app process's VmRSS while the function ran


def run(app, mib):
    proc, port = azfunc_start.start(app, "--no-watch", "--max-body-size", (mib + 1) << 20)
    try:
        post(port, 1)  # warm-up
        pids = {"supervisor": proc.pid, "app": children(proc.pid)[0]}
        idle = {k: status_kib(p, "VmRSS") for k, p in pids.items()}
        for p in pids.values():
            with open(f"/proc/{p}/clear_refs", "w") as f:
                f.write("5")
        during = post(port, mib)
        got = {k: (status_kib(p, "VmHWM") - idle[k]) / 1024 / mib for k, p in pids.items()}
        got["during"] = (during - idle["app"]) / 1024 / mib
        return got
    finally:
        proc.terminate()
        proc.wait(timeout=60)


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    sizes = [int(a) for a in sys.argv[2:]] or [16, 64, 256]
    with tempfile.TemporaryDirectory() as tmp:
        app = Path(tmp) / "bodyapp"
        app.mkdir()
        (app / "function_app.py").write_text(APP)
        (app / "host.json").write_text('{"version": "2.0"}\n')
        for mib in sizes:
            got = [run(app, mib) for _ in range(runs)]
            for i, g in enumerate(got):
                print(f"{mib} MiB run {i}: app peak {g['app']:.2f}x, while the function runs "
                      f"{g['during']:.2f}x; supervisor peak {g['supervisor']:.3f}x")
            med = {k: statistics.median(g[k] for g in got) for k in got[0]}
            print(f"{mib} MiB median: app peak {med['app']:.2f}x, while the function runs "
                  f"{med['during']:.2f}x; supervisor peak {med['supervisor']:.3f}x", flush=True)


if __name__ == "__main__":
    main()
