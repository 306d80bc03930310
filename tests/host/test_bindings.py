"""Every case of tests/apps/inv_*/invocations.json (the adapter's in-process cases, see
tests/python/test_python_invoke.c for the format) replayed through the host simulator against
azfunc-worker: one worker per app, indexed (v2) or loaded from function.json (v1) as the host
does, each case sent as an InvocationRequest carrying the TypedData the real host sends
(host-protocol.md §1.6, §10.6-10.12) and its InvocationResponse checked field by field."""
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

import azhost
from azhost import pb

APPS = Path(__file__).resolve().parents[1] / "apps"
STATUS = {"failed": 0, "succeeded": 1, "cancelled": 2}
USER = 0

# Cases the simulator cannot replay as the host would; one reason each.
SKIP = {
    ("inv_v2_bindings", 30): "sends TypedData.int, which the host never sends (§10.11): as json it is valid",
}
# Cases where azfunc-worker differs from the official worker when driven as the host drives it.
XFAIL = {}  # (app, case index) -> reason; strict
# App keys driven through the C API only: "drain" (azf_python_drain) is covered by
# test_invocations.py's terminate tests.


def wire(v):
    """invocations.json VALUE → the TypedData the host sends for it."""
    if v is None:
        return pb.TypedData()
    (k, p), = v.items()
    if k in ("string", "json"):
        return pb.TypedData(**{k: p})
    if k in ("bytes", "stream"):
        return pb.TypedData(**{k: p.encode()})
    if k == "int":  # the host serializes integers as JSON (§10.11)
        return pb.TypedData(json=json.dumps(p))
    if k == "double":
        return pb.TypedData(double=p)
    if k == "collection_string":
        return pb.TypedData(collection_string=pb.CollectionString(string=p))
    if k == "collection_bytes":
        return pb.TypedData(collection_bytes=pb.CollectionBytes(bytes=[s.encode() for s in p]))
    if k == "collection_double":
        return pb.TypedData(collection_double=pb.CollectionDouble(double=p))
    if k == "collection_sint64":
        return pb.TypedData(collection_sint64=pb.CollectionSInt64(sint64=p))
    if k == "model_binding_data":
        return pb.TypedData(model_binding_data=pb.ModelBindingData(
            version=p["version"], source=p["source"], content_type=p["content_type"],
            content=p["content"].encode()))
    if k == "http":
        # Keys lowercased, route values in `params`, query in `query`; the body always as bytes
        # (RawHttpBodyBytes), and only when there is one (§10.6, §10.7).
        h = pb.RpcHttp(method=p.get("method", ""), url=p.get("url", ""),
                       headers={n.lower(): s for n, s in p.get("headers", {}).items()},
                       query=p.get("query", {}), params=p.get("params", {}))
        body = p.get("body")
        if body:
            (_, text), = body.items()
            if text:
                h.body.CopyFrom(pb.TypedData(bytes=text.encode()))
        return pb.TypedData(http=h)
    raise AssertionError(f"unknown value kind {k}")


def check_value(want, got, where):
    """Compares an expected VALUE (or HTTP expectation) with a TypedData from the worker."""
    member = got.WhichOneof("data")
    if want is None:
        assert member is None, f"{where}: expected no value, got {got}"
        return
    (k, p), = want.items()
    assert member == k, f"{where}: expected {k}, got {member}: {got}"
    if k in ("string", "json"):
        assert getattr(got, k) == p, where
    elif k == "bytes":
        assert got.bytes == p.encode(), where
    elif k in ("int", "double"):
        assert getattr(got, k) == p, where
    elif k == "http":
        check_http(p, got.http, where)
    else:
        raise AssertionError(f"{where}: cannot check {k}")


def check_http(want, h, where):
    if "status" in want:
        assert h.status_code == want["status"], where
    headers = {k.lower(): v for k, v in h.headers.items()}  # response keys keep the app's case
    for n, v in want.get("headers", {}).items():
        assert headers.get(n.lower()) == v, f"{where} header {n}: {dict(h.headers)}"
    for n in want.get("headers_absent", []):
        assert n.lower() not in headers, f"{where} header {n}"
    if "body" in want:
        check_value(want["body"], h.body, where + " body")
    if "cookies" not in want:
        return
    assert len(h.cookies) == len(want["cookies"]), where
    for c, w in zip(h.cookies, want["cookies"]):
        opt = lambda m, f: getattr(getattr(c, f), "value") if c.HasField(f) else m  # noqa: E731
        assert (c.name, c.value) == (w["name"], w["value"]), where
        assert opt(None, "domain") == w["domain"] and opt(None, "path") == w["path"], where
        assert (c.expires.value.seconds if c.HasField("expires") else None) == w["expires"], where
        assert opt(-1, "secure") == w["secure"] and opt(-1, "http_only") == w["http_only"], where
        assert c.same_site == w["same_site"] and opt(None, "max_age") == w["max_age"], where


def load_spec(app):
    return json.loads((APPS / app / "invocations.json").read_text())


def cases():
    for f in sorted(APPS.glob("inv_*/invocations.json")):
        app = f.parent.name
        for i, case in enumerate(load_spec(app)["cases"]):
            marks = [pytest.mark.skip(reason=SKIP[app, i])] if (app, i) in SKIP else []
            if (app, i) in XFAIL:
                marks.append(pytest.mark.xfail(reason=XFAIL[app, i], strict=True))
            yield pytest.param(app, i, case, id=f"{app}-{i}-{case['function']}", marks=marks)


ALL = list(cases())
LAST = {p.values[0]: p.values[1] for p in ALL}


def start_app(name, tmp_path_factory):
    """A worker serving one app as the host starts it → (host, function ids by name, spec, metadata)."""
    spec = load_spec(name)
    req = spec.get("requires")
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}" / "site-packages"
    if req and (azhost.TEST_PYTHON or not (site / req).exists()):
        pytest.skip(f"{req} is not installed for the worker's Python")
    app = tmp_path_factory.mktemp("bind") / name
    shutil.copytree(APPS / name, app, ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v.replace("%APP%", str(app)) for k, v in spec.get("env", {}).items()}
    h = azhost.Host(azhost.worker_path(), app_dir=app, env=env)
    h.start()
    try:
        assert h.init(function_app_directory=app).result.status == STATUS["succeeded"]
        if "reload" in spec:  # a placeholder specialized before indexing, as the host does it
            r = h.reload_environment(spec["reload"]["env"], function_app_directory=app)
            assert r.result.status == STATUS["succeeded"], r.result.exception.message
        md = h.metadata(function_app_directory=app)
        if md.use_default_metadata_indexing:  # v1: the host reads function.json
            ids = {}
            for d in sorted(p.parent for p in app.glob("*/function.json")):
                ids[d.name] = azhost.new_id()
                r = h.load_function_json(d.name, function_id=ids[d.name])
                assert r.result.status == STATUS["succeeded"], r.result.exception.message
        else:
            assert md.result.status == STATUS["succeeded"], md.result.exception.message
            for r in h.load_indexed(md).values():
                assert r.result.status == STATUS["succeeded"], r.result.exception.message
            ids = {f.name: f.function_id for f in md.function_metadata_results}
    except BaseException:
        stop_app(h)
        raise
    return h, ids, spec, md


def stop_app(h):
    h.close()
    if h.process is not None:
        print(f"worker {h.process.argv}\n{h.process.output(200)}")


@pytest.fixture(scope="module")
def workers():
    """The running worker: one per app, kept while that app's cases run (they run in file order,
    and some cases count on the earlier ones of their app)."""
    running = {}
    yield running
    for h, *_ in running.values():
        stop_app(h)


@pytest.fixture
def served(request, workers, tmp_path_factory):
    name = request.node.callspec.params["app"]
    if name not in workers:
        for old in list(workers):  # the previous app is done (its last case did not run)
            stop_app(workers.pop(old)[0])
        workers[name] = start_app(name, tmp_path_factory)
    yield workers[name]
    if request.node.callspec.params.get("i", -1) == LAST.get(name):  # the app's last case: check its host
        h, _, spec, _ = workers.pop(name)
        stop_app(h)
        h.check()
        if "system_log" in spec:  # logs outside invocations reached the host as System logs
            text = "".join(f"{lg.level} {lg.category} {lg.message}\n" for lg in h.system_logs)
            assert re.search(spec["system_log"], text), text


def test_replays_both_generations():
    names = {p.values[0] for p in ALL}
    assert {"inv_v1_bindings", "inv_v1_middleware", "inv_v2_bindings", "inv_v2_http", "inv_v2_sdk"} <= names


@pytest.mark.parametrize("app", sorted({p.values[0] for p in ALL if "index_contains" in load_spec(p.values[0])}))
def test_index(app, served):
    """The raw bindings the host reads for SDK types (SupportsDeferredBinding)."""
    _, _, spec, md = served
    raw = [b for f in md.function_metadata_results for b in f.raw_bindings]
    for pattern in spec["index_contains"]:
        assert any(re.search(pattern, b) for b in raw), (pattern, raw)


def request_for(case, inv_id, fid):
    tr = case.get("trace")
    rt = case.get("retry")
    return pb.InvocationRequest(
        invocation_id=inv_id, function_id=fid,
        input_data=[pb.ParameterBinding(name=n, data=wire(v)) for n, v in case["inputs"].items()],
        trigger_metadata={n: wire(v) for n, v in case.get("metadata", {}).items()},
        trace_context=pb.RpcTraceContext(trace_parent=tr["parent"], trace_state=tr["state"],
                                         attributes=tr["attributes"]) if tr else pb.RpcTraceContext(),
        retry_context=pb.RetryContext(retry_count=rt["count"], max_retry_count=rt["max"],
                                      exception=pb.RpcException(message=rt["message"], stack_trace=rt["stack"]))
        if rt else None)


@pytest.mark.parametrize("app, i, case", ALL)
def test_case(app, i, case, served):
    h, ids, _, _ = served
    fname = case["function"]
    assert fname in ids, f"{fname} not loaded: {sorted(ids)}"
    exp = case["expect"]
    # The in-process driver names invocations inv-<function>-<n>; a case that returns its
    # invocation id expects that name, so it is reused here.
    named = re.search(rf'inv-{re.escape(fname)}-\d+', json.dumps(exp))
    base = named.group(0) if named else f"inv-{fname}-{i}-{azhost.new_id()}"
    n = case.get("repeat", 1)
    invs = [h.start_invocation(request=request_for(case, base if n == 1 else f"{base}-{k}", ids[fname]))
            for k in range(n)]
    if case.get("cancel"):
        for inv in invs:
            h.send(invocation_cancel=pb.InvocationCancel(invocation_id=inv.id))
    for inv in invs:
        r = inv.wait()
        where = f"{fname} ({inv.id})"
        assert r.invocation_id == inv.id
        want = STATUS[exp.get("status", "succeeded")]
        assert r.result.status == want, f"{where}: {r.result.exception.message}\n{r.result.exception.stack_trace}"
        if "error" in exp:
            assert re.search(exp["error"], r.result.exception.message, re.S), r.result.exception.message
        if "stack" in exp:
            assert re.search(exp["stack"], r.result.exception.stack_trace, re.S), r.result.exception.stack_trace
        if "return" in exp:
            check_value(exp["return"], r.return_value, where + " return")
        outputs = {o.name: o.data for o in r.output_data}
        for name, w in exp.get("outputs", {}).items():
            if w is None:
                assert name not in outputs, f"{where}: output {name} should be omitted"
            else:
                assert name in outputs, f"{where}: no output {name}: {sorted(outputs)}"
                check_value(w, outputs[name], f"{where} output {name}")
        # Expected User logs arrived before the response, in order (others may come between).
        logs = iter(inv.logs)
        for w in exp.get("logs", []):
            assert any(lg.level == w["level"] and w.get("category", lg.category) == lg.category
                       and re.search(w["message"], lg.message, re.S)
                       for lg in logs), (w, [(lg.level, lg.category, lg.message) for lg in inv.logs])
        assert all(lg.log_category == USER and lg.invocation_id == inv.id for lg in inv.logs)
    assert not h.dropped_logs, [lg.message for lg in h.dropped_logs]
