"""`azfunc start` as a new user runs it: from a plain shell (env -i PATH=/usr/bin:/bin
HOME=$HOME), on an app whose .venv was made by each Python found; no exported
variables. Its first lines name the Python, the venv and libazfunc."""

import json
import re
import subprocess

import pytest

from conftest import APPS, VERSIONS, Runner, plain_env, pythons

pytestmark = pytest.mark.skipif(not VERSIONS, reason="no build/python-versions.txt")


def make_venv(app, version):
    subprocess.run([pythons()[version], "-m", "venv", "--without-pip", str(app / ".venv")],
                   check=True, timeout=120, env=plain_env())
    return app / ".venv"


@pytest.mark.parametrize("version", VERSIONS)
def test_start_serves_an_app_with_its_venv(tmp_path, prefix, version):
    app = tmp_path / "app"
    app.mkdir()
    # The v2 app without its .python_packages dependency: only what the venv gives.
    source = (APPS / "v2_app" / "function_app.py").read_text()
    (app / "function_app.py").write_text(source.replace("import greeting\n", "").replace(
        'greeting.hello(req.params.get("name", "x"))', '"hi"'))
    venv = make_venv(app, version)
    r = Runner(prefix, app)
    try:
        first = [r.wait_for(r"Python "), r.wait_for(r"Virtual environment: "), r.wait_for(r"libazfunc ")]
        r.wait_for(r"Host started")
        report = json.loads(r.get("/api/probe"))
    finally:
        r.stop()
    full = subprocess.run([pythons()[version], "-c", "import sys; print(sys.version.split()[0])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert first[0].endswith(f"Python {full} ({venv}/bin/python)\n"), first
    assert first[1].endswith(f"Virtual environment: {venv}\n"), first
    assert re.search(r"libazfunc \d+\.\d+\.\d+, adapter .*/libazfunc-python" + re.escape(version) + r"\.so$",
                     first[2].rstrip()), first
    assert report["version"] == version
    assert report["executable"] == f"{venv}/bin/python"
    assert report["ssl"].startswith("OpenSSL") and report["https"] == "HTTPSHandler", report
    # The venv has no azure-functions: the copy installed with libazfunc serves.
    assert report["azure_functions"].startswith(str(prefix / "lib" / "azfunc" / f"python{version}")), report
