"""Writes the seed corpus of fuzz_worker (tests/fuzz/corpus/worker/): host conversations
as gRPC frames, built with Google's protobuf runtime through the host simulator's schema,
for the fake app of fuzz_worker.c (function ids fid-echo, fid-fail, fid-hold).
    .venv/bin/python tests/fuzz/make_worker_seeds.py"""
import struct
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "host"))
from azhost import field, pb  # noqa: E402

OUT = HERE / "corpus" / "worker"


def frame(msg):
    data = msg if isinstance(msg, bytes) else msg.SerializeToString()
    return b"\0" + struct.pack(">I", len(data)) + data


def sm(**content):
    return pb.StreamingMessage(**content)


def http(body=b"hi", **kw):
    return [pb.ParameterBinding(name="req", data=pb.TypedData(http=pb.RpcHttp(
        method="POST", url="http://localhost/api/x", headers={"a": "b"}, query={"q": "1"},
        body=pb.TypedData(bytes=body), **kw)))]


def invoke(fid, iid, **kw):
    return sm(invocation_request=pb.InvocationRequest(
        invocation_id=iid, function_id=fid, input_data=http(), trigger_metadata={"sys": pb.TypedData(json="{}")},
        trace_context=pb.RpcTraceContext(trace_parent="00-1-2-01", attributes={"k": "v"}),
        retry_context=pb.RetryContext(retry_count=1, max_retry_count=3), **kw))


INIT = sm(worker_init_request=pb.WorkerInitRequest(host_version="4.0", capabilities={"FunctionDataCache": "true"},
                                                   function_app_directory="/nonexistent"))
SEEDS = {
    "init_status": [INIT, sm(request_id="r1", worker_status_request=pb.WorkerStatusRequest())],
    "metadata": [INIT, sm(request_id="m1", functions_metadata_request=pb.FunctionsMetadataRequest(
        function_app_directory="/nonexistent"))],
    "load": [INIT, sm(function_load_request=pb.FunctionLoadRequest(function_id="fid-echo", metadata=pb.RpcFunctionMetadata(
        name="echo", directory="/nonexistent/echo", properties={"worker_indexed": "True"})))],
    "load_v1": [INIT, sm(function_load_request=pb.FunctionLoadRequest(function_id="fid-x", metadata=pb.RpcFunctionMetadata(
        name="x", directory="/nonexistent/x", script_file="__init__.py", entry_point="main",
        bindings={"req": pb.BindingInfo(type="httpTrigger", direction=0)})))],
    "invoke_echo": [INIT, invoke("fid-echo", "i1")],
    "invoke_fail_unknown": [INIT, invoke("fid-fail", "i1"), invoke("nope", "i2")],
    "hold_cancel": [INIT, invoke("fid-hold", "i1"), sm(invocation_cancel=pb.InvocationCancel(invocation_id="i1"))],
    "hold_terminate": [INIT, invoke("fid-hold", "i1"), sm(worker_terminate=pb.WorkerTerminate(
        grace_period=pb.Duration(seconds=5))), invoke("fid-echo", "i2")],
    "reload": [INIT, sm(function_environment_reload_request=pb.FunctionEnvironmentReloadRequest(
        environment_variables={"A": "1"}, function_app_directory="/nonexistent"))],
    "close_shm": [INIT, sm(close_shared_memory_resources_request=pb.CloseSharedMemoryResourcesRequest(
        map_names=["m1", "m2"]))],
    "unknown_and_garbage": [INIT, sm(worker_heartbeat=pb.WorkerHeartbeat()), b"\xff\xff\xff"],
    "nul_id": [INIT, field(4, field(1, b"ab\0c") + field(2, b"fid-echo"))],
    "nul_string": [INIT, field(4, field(1, b"i9") + field(2, b"fid-echo") + field(3, field(1, b"req") + field(
        2, field(1, b"a\0b"))))],
}
deep = b""
for _ in range(150):
    deep = field(5, field(4, deep))
SEEDS["deep"] = [INIT, field(4, field(1, b"i3") + field(2, b"fid-echo") + field(3, field(1, b"req") + field(2, deep)))]

OUT.mkdir(parents=True, exist_ok=True)
for name, msgs in SEEDS.items():
    (OUT / f"{name}.bin").write_bytes(b"".join(frame(m) for m in msgs))
print(f"wrote {len(SEEDS)} seeds to {OUT}")
