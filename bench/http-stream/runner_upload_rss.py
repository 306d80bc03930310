"""HTTP streaming through `azfunc start`, the other way: a large chunked upload to a function
that reads it as it arrives (tests/apps/stream_v2 `upload`: size and SHA-256 of the body),
while the resident set size of azfunc start's processes (the supervisor and the app process
with the runner's HTTP front, its proxy, Python and the app's server) is sampled.

    AZF_BUILD_DIR=build .venv/bin/python bench/http-stream/runner_upload_rss.py [MiB]

The upload exceeds nothing: `--max-body-size` is raised to fit it.
"""
import hashlib
import http.client
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))
import azfunc_start  # noqa: E402
from runner_rss import peak_rss_during  # noqa: E402


PIECE = bytes(range(256)) * 4096  # 1 MiB


def expected(mib):
    digest = hashlib.sha256()
    for _ in range(mib):
        digest.update(PIECE)
    return mib << 20, digest.hexdigest()


def upload(port, mib, want):
    """mib MiB in 1 MiB chunks; the function's answer, checked against want."""
    piece = PIECE
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    conn.request("POST", "/api/upload", body=(piece for _ in range(mib)), encode_chunked=True)
    resp = conn.getresponse()
    got = json.loads(resp.read())
    conn.close()
    assert resp.status == 200, resp.status
    assert (got["size"], got["sha256"]) == want, got
    return got


def main():
    mib = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    tmp = Path(tempfile.mkdtemp())
    app = tmp / "stream_v2"
    shutil.copytree(ROOT / "tests" / "apps" / "stream_v2", app)
    proc, port = azfunc_start.start(app, "--max-body-size", (mib + 1) << 20)
    try:
        upload(port, 16, expected(16))  # warm-up
        want = expected(mib)
        got, secs, base, peak = peak_rss_during(proc.pid, lambda: upload(port, mib, want))
        print(f"{mib} MiB uploaded in {secs:.1f} s ({got['pieces']} pieces read by the function); "
              f"azfunc start processes' RSS baseline {base / 1024:.1f} MiB, peak "
              f"{peak / 1024:.1f} MiB, peak extra {(peak - base) / 1024:.1f} MiB")
    finally:
        proc.terminate()
        proc.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
