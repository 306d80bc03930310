"""Each way Python can fail to serve an app names its cause, on every surface:
`azfunc start` (the message and a hint), azfunc-worker (stderr, and the host's
WorkerInitResponse), and the launcher that Core Tools' python3 runs."""

import glob
import os
import re
import shutil
import subprocess
import sys

import pytest

from deploy_env import APPS, VERSIONS, Runner, azhost, bundled, plain_env, pythons

pytestmark = pytest.mark.skipif(not VERSIONS, reason="no build/python-versions.txt")
FAILURE = azhost.pb.StatusResult.Status.Value("Failure")
ADAPTERS = ", ".join(VERSIONS)


def start(prefix, app, *args, env=None):
    """`azfunc start` that fails before serving (or serves: stopped after indexing)."""
    argv = [str(prefix / "bin" / "azfunc"), "start", str(app), "--port", str(azhost.free_port()), *args]
    p = subprocess.Popen(argv, env=env or plain_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        out, err = p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
    return p.returncode, out, err


def v2_app(tmp_path):
    app = tmp_path / "app"
    app.mkdir()
    (app / "function_app.py").write_text((APPS / "v2_app" / "function_app.py").read_text())
    return app


def unsupported_python():
    """An interpreter of a CPython this build has no adapter for (pyenv's, if any)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    for exe in sorted(glob.glob(f"{root}/versions/3.*/bin/python3.[0-9]*")):
        v = re.search(r"python(3\.\d+)$", exe)
        if v and v.group(1) not in VERSIONS:
            return exe, v.group(1)
    for n in range(9, 5, -1):
        exe = shutil.which(f"python3.{n}")
        if exe:
            return exe, f"3.{n}"
    pytest.skip("no CPython without an adapter on this machine")


# ---- azfunc start --------------------------------------------------------------------------

def test_start_missing_venv(tmp_path, prefix):
    app = v2_app(tmp_path)
    rc, _, err = start(prefix, app, "--venv", str(tmp_path / "nowhere"))
    assert rc == 1
    assert err == (f"azfunc start: cannot open the function app in {app}: cannot start Python: the "
                   f"virtual environment {tmp_path}/nowhere (from the venv option) does not exist\n"
                   "hint: create it (python3.X -m venv DIR, then DIR/bin/python -m pip install -r "
                   "requirements.txt), or name another with --venv\n")


def test_start_venv_of_another_version(tmp_path, prefix):
    if len(VERSIONS) < 2:
        pytest.skip("one Python only")
    made, asked = VERSIONS[0], VERSIONS[-1]
    app = v2_app(tmp_path)
    subprocess.run([pythons()[made], "-m", "venv", "--without-pip", str(app / ".venv")], check=True,
                   timeout=120, env=plain_env())
    rc, _, err = start(prefix, app, "--python", asked)
    assert rc == 1
    assert err == (f"azfunc start: cannot open the function app in {app}: cannot start Python: the "
                   f"virtual environment {app}/.venv (from the app's .venv) is Python {made}, but the "
                   f"version option asks for Python {asked}: recreate the venv with python{asked} -m "
                   f"venv, or ask for Python {made}\n")


def test_start_unbuilt_version(tmp_path, prefix):
    app = v2_app(tmp_path)
    rc, _, err = start(prefix, app, "--python", "3.99")
    assert rc == 1
    assert err == (f"azfunc start: cannot open the function app in {app}: cannot start Python: Python "
                   "3.99 (the version option) has no libazfunc adapter: there is no "
                   f"libazfunc-python3.99.so (adapters installed: {ADAPTERS})\n"
                   "hint: libazfunc builds an adapter for every CPython 3.10-3.13 with a shared "
                   "libpython it finds: install that Python and rebuild, or choose an installed one "
                   "with --python X.Y (or a venv made by it)\n")


def test_start_missing_azure_functions(tmp_path, prefix):
    version = VERSIONS[0]
    app = v2_app(tmp_path)
    (app / "function_app.py").write_text("import azure.functions\n")
    hidden = bundled(prefix, version).parent.with_name(f"hidden-{version}")
    bundled(prefix, version).parent.rename(hidden)  # an install without the bundled copy
    r = Runner(prefix, app, "--python", version)
    try:
        r.wait_for("Host started")
    finally:
        r.stop()
        hidden.rename(bundled(prefix, version).parent)
    out = "\n".join(r.lines)
    lines = [re.sub(r"^\[[^]]*\] ", "", line) for line in r.lines]
    assert lines[0].startswith(f"Python {version}."), out  # the first lines say which Python
    exe = re.match(r"Python [\d.]+ \((.*)\)$", lines[0]).group(1)
    assert ("The function app failed to index: ModuleNotFoundError: No module named 'azure.functions': "
            f"the azure-functions package is not installed for Python {version} ({exe}), neither with "
            "the app (.python_packages, its virtual environment) nor with libazfunc") in lines, out
    assert (f"hint: give the app a venv with it: python{version} -m venv .venv && .venv/bin/python -m "
            "pip install azure-functions") in lines, out


# ---- azfunc-worker under the host -------------------------------------------------------------

def host_fails(prefix, app, extra_env, argv=None, **env):
    """The worker as the host starts it → (init exception message, worker stderr)."""
    worker = argv or [str(prefix / "bin" / "azfunc-worker")]
    base = {"VIRTUAL_ENV": None, "PYTHONPATH": None, "AzureWebJobsScriptRoot": str(app),
            "AZF_PYTHON_VERSION": None, "AZF_PYTHON_PLUGIN": None, "AZF_TEST_PYTHON": None}
    base.update(extra_env)
    with azhost.Host(worker, app_dir=app, env=base) as h:
        init = h.init(function_app_directory=app)
        assert init.result.status == FAILURE
        message = init.result.exception.message
        h.close()
        h.process.wait()
        assert h.process.returncode == 1
    return message, h.process.stderr


def test_worker_unbuilt_version(tmp_path, prefix):
    app = v2_app(tmp_path)
    message, stderr = host_fails(prefix, app, {"FUNCTIONS_WORKER_RUNTIME_VERSION": "3.99"})
    want = ("cannot start Python: Python 3.99 (FUNCTIONS_WORKER_RUNTIME_VERSION) has no libazfunc "
            f"adapter: there is no libazfunc-python3.99.so (adapters installed: {ADAPTERS})")
    assert message == want
    assert "azfunc-worker: " + want in stderr


def test_worker_missing_venv(tmp_path, prefix):
    app = v2_app(tmp_path)
    message, stderr = host_fails(prefix, app, {"VIRTUAL_ENV": str(tmp_path / "gone"),
                                               "FUNCTIONS_WORKER_RUNTIME_VERSION": VERSIONS[0]})
    want = (f"cannot start Python: the virtual environment {tmp_path}/gone (from VIRTUAL_ENV) does not "
            "exist")
    assert message == want
    assert "azfunc-worker: " + want in stderr


def test_core_tools_python_without_adapter(tmp_path, prefix, worker_dir, worker_config):
    """Core Tools runs `python3 <worker path>`: with a Python libazfunc has no adapter
    for, the launcher still starts azfunc-worker, which says so to the host."""
    exe, version = unsupported_python()
    app = v2_app(tmp_path)
    launcher = str(worker_dir / VERSIONS[0] / "worker.py")
    message, _ = host_fails(prefix, app, {"FUNCTIONS_WORKER_RUNTIME_VERSION": None}, argv=[exe, launcher])
    assert message == (f"cannot start Python: Python {version} (FUNCTIONS_WORKER_RUNTIME_VERSION) has no "
                       f"libazfunc adapter: there is no libazfunc-python{version}.so (adapters installed: "
                       f"{ADAPTERS})")


def test_launcher_without_worker(tmp_path, worker_dir):
    """A launcher copied away from its installation says what it cannot start."""
    launcher = tmp_path / "3.X" / "worker.py"
    launcher.parent.mkdir()
    shutil.copy(worker_dir / VERSIONS[0] / "worker.py", launcher)
    p = subprocess.run([sys.executable, str(launcher), "--host", "127.0.0.1"], capture_output=True,
                       text=True, timeout=60)
    want = os.path.normpath(tmp_path / "3.X" / os.path.relpath(
        worker_dir.parent.parent.parent.parent / "bin", worker_dir / VERSIONS[0]) / "azfunc-worker")
    assert p.returncode == 1
    assert p.stderr == f"worker.py: cannot start {want}: No such file or directory\n"


def test_worker_python_option(tmp_path, prefix):
    """--python in workerArguments wins over the host's FUNCTIONS_WORKER_RUNTIME_VERSION."""
    app = v2_app(tmp_path)
    message, _ = host_fails(prefix, app, {"FUNCTIONS_WORKER_RUNTIME_VERSION": VERSIONS[0]},
                            argv=[str(prefix / "bin" / "azfunc-worker"), "--python", "3.99"])
    assert message == ("cannot start Python: Python 3.99 (the version option) has no libazfunc adapter: "
                       f"there is no libazfunc-python3.99.so (adapters installed: {ADAPTERS})")


def test_worker_option_without_value(prefix):
    p = subprocess.run([str(prefix / "bin" / "azfunc-worker"), "--venv"], capture_output=True, text=True,
                       timeout=60)
    assert p.returncode == 2
    assert p.stderr == "azfunc-worker: --venv needs a value\n(try --help)\n"
