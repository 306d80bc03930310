"""The app corpus (tests/apps/*/expected.json) through the host simulator against azfunc-worker:
metadata and load responses exactly as the real host sees them (host-protocol.md §3.4, §3.5,
§3.10, §10.13), and the multi-process case where a worker is never asked for metadata.

expected.json: "env" (the worker's environment), "index": {"use_default", "functions": [subset of
each function's metadata; null = absent; "%APP%" = the app directory], "error", "stack",
"stack_excludes"}, "load": {"<folder>": null (Success) | {"error", "host_error", "stack", "stack_excludes"}}.
The same files drive the in-process C API checks in tests/python.
"""
import json
import re
import shutil
from pathlib import Path

import pytest

import azhost
from azhost import pb

APPS = Path(__file__).resolve().parents[1] / "apps"
CORPUS = sorted(p.name for p in APPS.iterdir() if (p / "expected.json").is_file())
SUCCESS, FAILURE = 1, 0
DIRECTIONS = {"in": 0, "out": 1, "inout": 2}
DATA_TYPES = {"undefined": 0, "string": 1, "binary": 2, "stream": 3}
STRATEGIES = {"exponential_backoff": 0, "fixed_delay": 1}


def copy_app(tmp_path, name):
    """A private copy (Python writes __pycache__) under the same tests/apps/<name> tail the
    expected texts show."""
    dst = tmp_path / "tests" / "apps" / name
    shutil.copytree(APPS / name, dst, ignore=shutil.ignore_patterns("__pycache__"))
    return dst


def expected(name):
    return json.loads((APPS / name / "expected.json").read_text())


def check_failure(result, want, what):
    assert result.status == FAILURE, f"{what}: expected a Failure, got {result}"
    ex = result.exception
    # "host_error": the text when the script path comes from the host, which normalises it.
    error = want.get("host_error", want["error"])
    assert re.search(error, ex.message), f"{what}: {ex.message!r} !~ {error!r}"
    if "stack" in want:
        assert re.search(want["stack"], ex.stack_trace), f"{what}: stack {ex.stack_trace!r}"
    if "stack_excludes" in want:
        assert want["stack_excludes"] not in ex.stack_trace


def timespan_seconds(ts):
    h, m, s = ts.split(":")
    return int(h) * 3600 + int(m) * 60 + int(float(s))


def check_function(md, want, app):
    """RpcFunctionMetadata against an expected.json function (the adapter's metadata JSON)."""
    for key, w in want.items():
        if key == "name":
            assert md.name == w
        elif key == "functionId":
            assert md.function_id == w
        elif key == "scriptFile":
            assert md.script_file == w
        elif key == "entryPoint":
            assert md.entry_point == w
        elif key == "directory":
            assert md.directory == (str(app) if w == "%APP%" else w)
        elif key == "rawBindings":
            assert list(md.raw_bindings) == w  # verbatim, in the library's order
        elif key == "properties":
            assert dict(md.properties) == w
        elif key == "bindings":
            assert set(md.bindings) == {b["name"] for b in w}
            for b in w:
                info = md.bindings[b["name"]]
                assert info.type == b["type"]
                assert info.direction == DIRECTIONS[b["direction"].lower()]
                assert info.data_type == DATA_TYPES[b.get("dataType", "undefined").lower()]
        elif key == "retry":
            if w is None:
                assert not md.HasField("retry_options")
                continue
            r = md.retry_options
            assert r.retry_strategy == STRATEGIES[w["strategy"]]
            assert r.max_retry_count == int(w["maxRetryCount"])
            for field, name in (("delayInterval", "delay_interval"), ("minimumInterval", "minimum_interval"),
                                ("maximumInterval", "maximum_interval")):
                if field in w:
                    assert getattr(r, name).seconds == timespan_seconds(w[field])
        else:
            raise AssertionError(f"expected.json key {key!r} not checked by this test")
    assert md.language == "python"
    assert not md.is_proxy
    assert md.status.status == SUCCESS


@pytest.mark.parametrize("name", CORPUS)
def test_corpus_app(name, tmp_path, make_host, worker_exe):
    exp = expected(name)
    app = copy_app(tmp_path, name)
    h = make_host(worker_exe, app_dir=app, env=exp.get("env"))
    assert h.init(function_app_directory=app).result.status == SUCCESS
    resp = h.metadata(function_app_directory=app)
    index = exp["index"]
    if "error" in index:
        # No fallback to function.json: the host ends up with no functions (§3.4).
        check_failure(resp.result, index, "metadata")
        assert not resp.use_default_metadata_indexing
        assert len(resp.function_metadata_results) == 0
        return
    assert resp.result.status == SUCCESS, resp.result.exception.message
    assert resp.use_default_metadata_indexing == index["use_default"]
    if index["use_default"]:
        assert len(resp.function_metadata_results) == 0
        # The host reads function.json itself and sends one load per function (§5.1).
        for folder, want in exp.get("load", {}).items():
            load = h.load_function_json(folder)
            if want is None:
                assert load.result.status == SUCCESS, f"{folder}: {load.result.exception.message}"
            else:
                check_failure(load.result, want, f"load {folder}")
        return
    results = list(resp.function_metadata_results)
    assert [md.name for md in results] == [f["name"] for f in index["functions"]]
    for md, want in zip(results, index["functions"]):
        check_function(md, want, app)
    for fid, load in h.load_indexed(resp).items():
        assert load.function_id == fid
        assert load.result.status == SUCCESS, load.result.exception.message
    # A second metadata request gives the same answer (indexing runs once).
    again = h.metadata(function_app_directory=app)
    assert [md.function_id for md in again.function_metadata_results] == [md.function_id for md in results]


def test_load_response_stamped_with_worker_request_id(tmp_path, make_host, worker_exe):
    app = copy_app(tmp_path, "v1_app")
    h = make_host(worker_exe, app_dir=app)
    h.init(function_app_directory=app)
    h.load_function_json("HttpTrigger", function_id="fid-1")
    replies = [m for m in h.received if azhost.kind(m) == "function_load_response"]
    assert replies[-1].request_id == h.request_id
    assert replies[-1].function_load_response.function_id == "fid-1"


def test_failed_load_is_remembered_for_invocations(tmp_path, make_host, worker_exe):
    app = copy_app(tmp_path, "v1_syntax_error")
    h = make_host(worker_exe, app_dir=app)
    h.init(function_app_directory=app)
    load = h.load_function_json("v1_syntax_error", function_id="broken")
    assert load.result.status == FAILURE
    inv = h.invoke("broken")
    assert inv.response.result.status == FAILURE
    assert inv.response.result.exception.message == load.result.exception.message
    # A repeated load gives the same answer.
    again = h.load_function_json("v1_syntax_error", function_id="broken")
    assert again.result.exception.message == load.result.exception.message


@pytest.mark.parametrize("name", ["v2_http", "v2_blueprint", "v2_asgi"])
def test_multi_process_worker_indexed_load(name, tmp_path, make_host, worker_exe):
    """FUNCTIONS_WORKER_PROCESS_COUNT > 1: only the first worker is asked for metadata; the
    others get loads carrying properties.worker_indexed and index on their own (§3.1, §10.14)."""
    app = copy_app(tmp_path, name)
    first = make_host(worker_exe, app_dir=app)
    first.init(function_app_directory=app)
    resp = first.metadata(function_app_directory=app)
    assert len(resp.function_metadata_results) == len(expected(name)["index"]["functions"])
    second = make_host(worker_exe, app_dir=app)
    second.init(function_app_directory=app)
    for md in resp.function_metadata_results:
        load = second.load(md.function_id, azhost.indexed_load_metadata(md))
        assert load.result.status == SUCCESS, load.result.exception.message
    # The ids match across processes (uuid5 of the name): invocations find the functions.
    unknown = second.load(azhost.new_id(), pb.RpcFunctionMetadata(
        name="nope", directory=str(app), properties={"worker_indexed": "True"}))
    assert unknown.result.status == FAILURE
    assert "nope" in unknown.result.exception.message


def test_multi_process_indexing_error(tmp_path, make_host, worker_exe):
    """The indexing error of a worker never asked for metadata fails its worker-indexed loads,
    wrapped as the official worker does (raise Exception(error))."""
    app = copy_app(tmp_path, "v2_no_app")
    h = make_host(worker_exe, app_dir=app)
    h.init(function_app_directory=app)
    md = pb.RpcFunctionMetadata(name="hello", directory=str(app), script_file="function_app.py",
                                entry_point="hello", properties={"worker_indexed": "True"})
    load = h.load(azhost.new_id(), md)
    assert load.result.status == FAILURE
    assert load.result.exception.message == \
        "Exception: Could not find top level function app instances in function_app.py."


def test_user_logs_while_indexing_reach_the_host(tmp_path, make_host, worker_exe):
    # The app's records and the library's root-logger warning, emitted while the app is
    # indexed, reach the host with the official worker's category, level and text. The
    # official worker marks them User without an invocation id, which the host drops
    # (host-protocol.md §10.5): they go as System, so the host keeps them.
    app = copy_app(tmp_path, "v2_index_logs")
    h = make_host(worker_exe, app_dir=app)
    assert h.init(function_app_directory=app).result.status == SUCCESS
    resp = h.metadata(function_app_directory=app)
    assert resp.result.status == SUCCESS, resp.result.exception.message
    assert [md.name for md in resp.function_metadata_results] == ["on_queue"]
    seen = [(log.category, log.level, log.invocation_id, log.message)
            for log in h.system_logs if not log.category.startswith("azfunc")]
    assert ("index_logs.app", pb.RpcLog.Information, "", "imported while indexing") in seen
    warning = [s for s in seen if s[0] == "root"]
    assert len(warning) == 1, seen
    assert warning[0][1:3] == (pb.RpcLog.Warning, "")
    assert warning[0][3].startswith("Auth level is not applied to non http function app. Ref: ")
    assert not h.dropped_logs
