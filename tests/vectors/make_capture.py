"""Regenerates examples/captures/worker-start.bin: a short, realistic host <-> worker
conversation as a stream of gRPC frames, built with Google's Python protobuf runtime
from our schema (proto/FunctionRpc.proto).

    .venv/bin/python tests/vectors/make_capture.py [OUTPUT]
"""
import json
import os
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CAPTURE = os.path.join(ROOT, "examples", "captures", "worker-start.bin")


def compile_proto(out_dir):
    """Compiles our schema with grpc_tools.protoc into out_dir and imports it."""
    subprocess.run([sys.executable, "-m", "grpc_tools.protoc", "-I" + os.path.join(ROOT, "proto"),
                    "--python_out=" + out_dir, os.path.join(ROOT, "proto", "FunctionRpc.proto")],
                   check=True)
    if out_dir not in sys.path:
        sys.path.insert(0, out_dir)
    import FunctionRpc_pb2
    return FunctionRpc_pb2


def frame(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def build_messages(pb):
    """The conversation, in stream order (both directions interleaved). Map entries are
    serialized sorted (deterministic=True) so the capture is reproducible."""
    worker_id = "3f1c8a52-9d2e-4b7a-a1c0-5e6f7d8c9b0a"
    app_dir = "/home/site/wwwroot"
    fn_id = "8c2f4e1a-7b3d-4f9e-b6a5-0d1c2e3f4a5b"
    inv_id = "b7e2d9c4-1a3f-4e5d-8c6b-9a0f1e2d3c4b"
    msgs = []

    m = pb.StreamingMessage(request_id=worker_id)
    m.start_stream.worker_id = worker_id
    msgs.append(m)

    m = pb.StreamingMessage()
    r = m.worker_init_request
    r.host_version = "4.1037.0.0"
    r.capabilities["MultiStream"] = "10"
    r.worker_directory = "/azure-functions-host/workers/python/3.11/LINUX/X64"
    r.function_app_directory = app_dir
    msgs.append(m)

    m = pb.StreamingMessage(request_id=worker_id)
    r = m.worker_init_response
    for cap in ("RawHttpBodyBytes", "TypedDataCollection", "RpcHttpBodyOnly", "WorkerStatus",
                "RpcHttpTriggerMetadataRemoved", "SharedMemoryDataTransfer"):
        r.capabilities[cap] = "true"
    r.result.status = pb.StatusResult.Success
    r.worker_metadata.runtime_name = "python"
    r.worker_metadata.runtime_version = "3.11"
    r.worker_metadata.worker_version = "0.1.0"
    r.worker_metadata.worker_bitness = "x86_64"
    msgs.append(m)

    m = pb.StreamingMessage(request_id="6a1d0e9f-2c3b-4a5d-9e8f-7a6b5c4d3e2f")
    m.functions_metadata_request.function_app_directory = app_dir
    msgs.append(m)

    m = pb.StreamingMessage(request_id="6a1d0e9f-2c3b-4a5d-9e8f-7a6b5c4d3e2f")
    r = m.function_metadata_response
    f = r.function_metadata_results.add()
    f.name = "http_trigger"
    f.directory = app_dir
    f.script_file = "function_app.py"
    f.entry_point = "http_trigger"
    f.language = "python"
    f.function_id = fn_id
    f.raw_bindings.append(json.dumps({"direction": "IN", "type": "httpTrigger", "name": "req",
                                      "authLevel": "ANONYMOUS", "methods": ["GET", "POST"],
                                      "route": "hello/{name?}"}, separators=(",", ":")))
    f.raw_bindings.append(json.dumps({"direction": "OUT", "type": "http", "name": "$return"},
                                     separators=(",", ":")))
    f.properties["worker_indexed"] = "True"
    r.result.status = pb.StatusResult.Success
    msgs.append(m)

    m = pb.StreamingMessage()
    r = m.invocation_request
    r.invocation_id = inv_id
    r.function_id = fn_id
    b = r.input_data.add()
    b.name = "req"
    h = b.data.http
    h.method = "POST"
    h.url = "http://localhost:7071/api/hello/world?x=1"
    h.headers["content-type"] = "application/json"
    h.headers["host"] = "localhost:7071"
    h.body.bytes = b'{"greeting": "hi"}'
    h.params["name"] = "world"
    h.query["x"] = "1"
    r.trigger_metadata["name"].string = "world"
    r.trigger_metadata["Query"].json = '{"x":"1"}'
    r.trace_context.trace_parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    r.trace_context.attributes["OperationName"] = "http_trigger"
    msgs.append(m)

    m = pb.StreamingMessage(request_id=worker_id)
    log = m.rpc_log
    log.invocation_id = inv_id
    log.category = "Function.http_trigger.User"
    log.level = pb.RpcLog.Information
    log.message = "Python HTTP trigger function processed a request."
    msgs.append(m)

    m = pb.StreamingMessage(request_id=worker_id)
    r = m.invocation_response
    r.invocation_id = inv_id
    h = r.return_value.http
    h.status_code = "200"
    h.headers["content-type"] = "text/plain"
    h.body.bytes = b"Hello, world!"
    r.result.status = pb.StatusResult.Success
    msgs.append(m)
    return msgs


def capture_bytes(pb):
    return b"".join(frame(m.SerializeToString(deterministic=True)) for m in build_messages(pb))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else CAPTURE
    with tempfile.TemporaryDirectory() as tmp:
        pb = compile_proto(tmp)
        data = capture_bytes(pb)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "wb") as f:
        f.write(data)
    print(f"wrote {out} ({len(data)} bytes)")


if __name__ == "__main__":
    main()
