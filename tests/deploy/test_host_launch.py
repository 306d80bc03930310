"""The Functions host's launch of the installed worker, played exactly.

Reads the installed worker.config.json and starts what it names as the host does
(executable, arguments, worker path with %FUNCTIONS_WORKER_RUNTIME_VERSION%,
workerArguments, then the host's flags) with the host's environment: the app root as
working directory, FUNCTIONS_WORKER_RUNTIME_VERSION, AzureWebJobsScriptRoot, no
VIRTUAL_ENV and no PYTHONPATH; once more with the official launcher's PYTHONPATH; and
once with the executable replaced by that version's python3, as Core Tools does. The
v1 and v2 apps have their dependencies only in .python_packages.
"""

import json
import os

import pytest

from deploy_env import VERSIONS, azhost, make_app, pythons

pb = azhost.pb
SUCCESS = azhost.SUCCESS

pytestmark = pytest.mark.skipif(not VERSIONS, reason="no build/python-versions.txt")


def launch_argv(config, worker_dir, version, executable=None):
    """The host's command line before its own flags (host-protocol.md §2.1)."""
    d = config["description"]
    worker = d["defaultWorkerPath"].replace("%FUNCTIONS_WORKER_RUNTIME_VERSION%", version)
    if not os.path.isabs(worker):  # the host roots it in the worker directory
        worker = os.path.join(worker_dir, worker)
    return [executable or d["defaultExecutablePath"], *d.get("arguments", []), worker,
            *d.get("workerArguments", [])]


def launch_env(app, worker_dir, version, pythonpath=None):
    """What the host adds; None removes what the test runner's environment has."""
    return {"FUNCTIONS_WORKER_RUNTIME_VERSION": version, "AzureWebJobsScriptRoot": str(app),
            "FUNCTIONS_WORKER_DIRECTORY": str(worker_dir), "VIRTUAL_ENV": None,
            "PYTHONPATH": pythonpath, "AZF_PYTHON_VERSION": None, "AZF_PYTHON_PLUGIN": None}


def http(name):
    req = pb.RpcHttp(method="GET", url=f"http://localhost/api/probe?name={name}", query={"name": name})
    return [pb.ParameterBinding(name="req", data=pb.TypedData(http=req))]


def body(inv):
    b = inv.response.return_value.http.body
    return json.loads(b.string or b.bytes.decode())


def serve(h, app, kind):
    """init, metadata, load, one invocation → the function's report."""
    init = h.init(function_app_directory=app)
    assert init.result.status == SUCCESS, init.result.exception.message
    md = h.metadata(function_app_directory=app)
    assert md.result.status == SUCCESS, md.result.exception.message
    if kind == "v2":
        for load in h.load_indexed(md).values():
            assert load.result.status == SUCCESS, load.result.exception.message
        fid = {f.name: f.function_id for f in md.function_metadata_results}["probe"]
    else:
        assert md.use_default_metadata_indexing
        fid = azhost.new_id()
        load = h.load_function_json("Probe", fid)
        assert load.result.status == SUCCESS, load.result.exception.message
    inv = h.invoke(fid, http("Ada"))
    assert inv.response.result.status == SUCCESS, inv.response.result.exception.message
    return body(inv)


@pytest.mark.parametrize("kind", ["v1", "v2"])
@pytest.mark.parametrize("how", ["config", "config+launcher PYTHONPATH", "Core Tools python3"])
@pytest.mark.parametrize("version", VERSIONS)
def test_host_launch(tmp_path, prefix, worker_dir, worker_config, version, how, kind):
    app = make_app(tmp_path, f"{kind}_app", version, prefix)
    packages = app / ".python_packages" / "lib" / "site-packages"
    exe = pythons()[version] if how == "Core Tools python3" else None
    pythonpath = f"{packages}:{worker_dir}" if "PYTHONPATH" in how else None
    argv = launch_argv(worker_config, worker_dir, version, exe)
    with azhost.Host(argv, app_dir=app, env=launch_env(app, worker_dir, version, pythonpath)) as h:
        report = serve(h, app, kind)
        assert h.process.argv[:len(argv)] == argv and h.process.proc.args[0] == argv[0]
    assert report["greeting"] == "Hello, Ada!"
    assert report["version"] == version
    assert report["azure_functions"].startswith(str(packages)), report  # the app's copy wins
    assert report["ssl"].startswith("OpenSSL"), report
    assert report["path"][-1] == str(app), report["path"]  # the app root appended
    assert str(packages) in report["path"][:3], report["path"]
    if kind == "v2":  # the official worker's module, as apps import it, is there
        assert report["worker_logger"] == "azure_functions_worker"


def test_config_names_the_installed_worker(prefix, worker_dir, worker_config):
    d = worker_config["description"]
    assert d["language"] == "python"
    assert d["defaultExecutablePath"] == str(prefix / "bin" / "azfunc-worker")
    assert d["supportedRuntimeVersions"] == VERSIONS
    assert d["defaultWorkerPath"] == "%FUNCTIONS_WORKER_RUNTIME_VERSION%/worker.py"
    assert d["workerIndexing"] == "true"
    for v in VERSIONS:
        assert (worker_dir / v / "worker.py").is_file()
        assert (prefix / "lib" / f"libazfunc-python{v}.so").is_file()
        assert (prefix / "lib" / "azfunc" / f"python{v}" / "site-packages" / "azure" / "functions").is_dir()
        assert (prefix / "lib" / "azfunc" / f"python{v}" / "site-packages" / "azure_functions_worker"
                / "logging.py").is_file()
