"""`azfunc start` as a new user runs it: from a plain shell (env -i PATH=/usr/bin:/bin
HOME=$HOME), on an app whose .venv was made by each Python found; no exported
variables. Its first lines name the Python, the venv and libazfunc."""

import json
import re
import subprocess

import pytest

from deploy_env import APPS, VERSIONS, Runner, plain_env, pythons

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


def other_installations():
    """(version, python) for CPython installations of a version with an adapter that
    are not the installation the adapter was built against (pyenv's, if any)."""
    import glob
    import os
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    out = []
    for exe in sorted(glob.glob(f"{root}/versions/3.*/bin/python3.[0-9]*")):
        m = re.search(r"python(3\.\d+)$", exe)
        if m and m.group(1) in VERSIONS and os.path.realpath(exe) != os.path.realpath(pythons()[m.group(1)]):
            out.append((m.group(1), exe))
    return out


@pytest.mark.parametrize("version,python", other_installations() or [pytest.param(None, None, marks=pytest.mark.skip(
    reason="no second installation of a Python with an adapter"))])
def test_venv_of_another_installation_runs_that_installation(tmp_path, prefix, version, python):
    """The adapter for X.Y was built against one installation; a venv made by another
    installation of X.Y runs that one: its libpython and its own standard library (ssl
    included), never a mix."""
    app = tmp_path / "app"
    app.mkdir()
    source = (APPS / "v2_app" / "function_app.py").read_text()
    (app / "function_app.py").write_text(source.replace("import greeting\n", "").replace(
        'greeting.hello(req.params.get("name", "x"))', '"hi"'))
    subprocess.run([python, "-m", "venv", "--without-pip", str(app / ".venv")], check=True, timeout=120,
                   env=plain_env())
    info = subprocess.run([python, "-c", "import sys; print(sys.version.split()[0]); print(sys.base_prefix)"],
                          capture_output=True, text=True, check=True).stdout.split()
    r = Runner(prefix, app)
    try:
        r.wait_for("Host started")
        report = json.loads(r.get("/api/probe"))
    finally:
        r.stop()
    assert (report["full_version"], report["base_prefix"]) == (info[0], info[1]), report
    assert report["ssl"].startswith("OpenSSL") and report["https"] == "HTTPSHandler"
