"""A tiny worker on grpcio, only to self-test the host simulator (not a reference worker).

Speaks just enough: StartStream, init, status (request_id echoed), metadata (default
indexing), load/invocation → Failure, terminate → exit 0, unknown → System log.
FAKE_WORKER_MODE=wrong-id sends a StartStream with a different worker id; no-echo stamps
status replies with its own request id.
"""

import os
import queue
import sys
from urllib.parse import urlparse

import grpc

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from azhost import METHOD, LOG_SYSTEM, FAILURE, SUCCESS, kind, pb  # noqa: E402


def parse(argv):
    opts, i = {}, 0
    while i < len(argv):
        if argv[i].startswith("--") and i + 1 < len(argv):
            opts[argv[i]] = argv[i + 1]
            i += 2
        else:
            i += 1  # unknown or flag without a value: ignored
    if "--functions-uri" in opts:
        u = urlparse(opts["--functions-uri"])
        target, tls = f"{u.hostname}:{u.port}", u.scheme == "https"
    else:
        target, tls = f"{opts['--host']}:{opts['--port']}", False
    wid = opts.get("--functions-worker-id", opts.get("--workerId"))
    rid = opts.get("--functions-request-id", opts.get("--requestId"))
    return target, tls, opts.get("--tls-ca-file"), wid, rid


def main():
    target, tls, ca, wid, rid = parse(sys.argv[1:])
    if os.environ.get("FAKE_WORKER_MODE") == "wrong-id":
        wid = "not-" + wid
    opts = [("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)]
    if tls:
        creds = grpc.ssl_channel_credentials(open(ca, "rb").read() if ca else None)
        channel = grpc.secure_channel(target, creds, opts)
    else:
        channel = grpc.insecure_channel(target, opts)
    out = queue.Queue()
    out.put(pb.StreamingMessage(request_id=rid, start_stream=pb.StartStream(worker_id=wid)))
    call = channel.stream_stream(METHOD, request_serializer=pb.StreamingMessage.SerializeToString,
                                 response_deserializer=pb.StreamingMessage.FromString)(iter(out.get, None))
    terminating = False
    try:
        for msg in call:
            k = kind(msg)
            if k == "worker_init_request":
                out.put(pb.StreamingMessage(request_id=rid, worker_init_response=pb.WorkerInitResponse(
                    capabilities={"WorkerStatus": "true"}, result=pb.StatusResult(status=SUCCESS),
                    worker_metadata=pb.WorkerMetadata(runtime_name="python", runtime_version="3.11",
                                                      worker_version="0", worker_bitness="x86_64"))))
            elif k == "worker_status_request":
                echo = rid if os.environ.get("FAKE_WORKER_MODE") == "no-echo" else msg.request_id
                out.put(pb.StreamingMessage(request_id=echo, worker_status_response=pb.WorkerStatusResponse()))
            elif k == "functions_metadata_request":
                out.put(pb.StreamingMessage(request_id=msg.request_id, function_metadata_response=pb.
                                            FunctionMetadataResponse(use_default_metadata_indexing=True,
                                                                     result=pb.StatusResult(status=SUCCESS))))
            elif k == "function_load_request":
                out.put(pb.StreamingMessage(request_id=rid, function_load_response=pb.FunctionLoadResponse(
                    function_id=msg.function_load_request.function_id, result=pb.StatusResult(status=FAILURE))))
            elif k == "invocation_request":
                iid = msg.invocation_request.invocation_id
                user_log = pb.StreamingMessage(request_id=rid, rpc_log=pb.RpcLog(invocation_id=iid, message="hi"))
                if msg.invocation_request.function_id == "log":  # one log before the response, one after
                    out.put(user_log)
                out.put(pb.StreamingMessage(request_id=rid, invocation_response=pb.InvocationResponse(
                    invocation_id=iid, result=pb.StatusResult(status=FAILURE))))
                if msg.invocation_request.function_id == "log":
                    out.put(user_log)
            elif k == "worker_terminate":
                out.put(None)  # half-close after the queued replies; the host then ends the call
                terminating = True
            else:
                out.put(pb.StreamingMessage(request_id=rid, rpc_log=pb.RpcLog(
                    log_category=LOG_SYSTEM, message=f"unknown message {k}")))
        if terminating:
            sys.exit(0)
    except grpc.RpcError as e:
        print(f"fake worker: stream failed: {e.code()} {e.details()}", file=sys.stderr)
        sys.exit(1)
    print("fake worker: stream closed by the host", file=sys.stderr)
    sys.exit(1)


# The command line that runs this fake worker (tests import it; pytest test modules must not
# import from conftest, whose module name every suite shares).
COMMAND = [sys.executable, os.path.abspath(__file__)]

if __name__ == "__main__":
    main()
