"""examples/c-host: a custom host built out of tree against an installed libazfunc with
only `pkg-config azfunc`, invoking a Python function in-process."""

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BUILD = Path(os.environ.get("AZF_BUILD_DIR", ROOT / "build"))
if not BUILD.is_absolute():
    BUILD = ROOT / BUILD


@pytest.mark.skipif(not (BUILD / "CMakeCache.txt").exists(), reason="no build tree")
def test_c_host_from_installed_prefix(tmp_path):
    prefix = tmp_path / "prefix"
    subprocess.run(["cmake", "--install", str(BUILD), "--prefix", str(prefix)], check=True,
                   stdout=subprocess.DEVNULL)
    pcdirs = [str(p.parent) for p in prefix.rglob("azfunc.pc")]
    assert pcdirs, "azfunc.pc not installed"
    env = dict(os.environ, PKG_CONFIG_PATH=":".join(pcdirs))
    # A sanitized library needs the sanitizer runtime in the executable too.
    if "AZF_SANITIZE:BOOL=ON" in (BUILD / "CMakeCache.txt").read_text():
        env["LDFLAGS"] = "-fsanitize=address,undefined"
    subprocess.run(["make", "-s", "-C", str(ROOT / "examples" / "c-host"), f"OUT={tmp_path}"],
                   check=True, env=env)
    run_env = dict(os.environ, VIRTUAL_ENV=str(ROOT / ".venv"),
                   LSAN_OPTIONS=f"suppressions={ROOT}/tests/python/lsan.supp:print_suppressions=0")
    out = subprocess.run([str(tmp_path / "c-host"), str(ROOT / "examples" / "hello"), "hello",
                          "Ada"], check=True, capture_output=True, text=True, env=run_env,
                         timeout=120)
    assert "function HttpHello (httpTrigger)" in out.stdout
    assert "200 Hello, Ada!" in out.stdout
