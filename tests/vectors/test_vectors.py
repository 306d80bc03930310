"""Cross-implementation vectors: messages built and serialized by Google's Python
protobuf runtime from our schema, decoded by our codec (azfunc decode) and compared
field by field with json_format.MessageToDict; and the reverse: JSON from
json_format.MessageToJson, encoded by our codec (azfunc encode), parsed by Python and
compared with == to the original message."""
import math

import pytest
from google.protobuf import json_format

from grpc_frames import frame, split_frames

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
INT32_MIN, INT32_MAX = -(2 ** 31), 2 ** 31 - 1


def compare(ours, theirs, path="$"):
    """Field-by-field comparison with a readable path on the first difference."""
    if isinstance(theirs, dict):
        assert isinstance(ours, dict), f"{path}: expected an object, got {ours!r}"
        assert set(ours) == set(theirs), (
            f"{path}: keys differ: only ours {sorted(set(ours) - set(theirs))}, "
            f"only Python's {sorted(set(theirs) - set(ours))}")
        for k in theirs:
            compare(ours[k], theirs[k], f"{path}.{k}")
    elif isinstance(theirs, list):
        assert isinstance(ours, list) and len(ours) == len(theirs), f"{path}: {ours!r} != {theirs!r}"
        for i, (a, b) in enumerate(zip(ours, theirs)):
            compare(a, b, f"{path}[{i}]")
    elif isinstance(theirs, float) and math.isnan(theirs):
        assert isinstance(ours, float) and math.isnan(ours), f"{path}: {ours!r} is not NaN"
    else:
        assert type(ours) in (type(theirs), int, float) and ours == theirs, \
            f"{path}: ours {ours!r} != Python's {theirs!r}"
        if isinstance(theirs, bool) or isinstance(ours, bool):
            assert type(ours) is type(theirs), f"{path}: {ours!r} vs {theirs!r}"


# ---- message builders ------------------------------------------------------------


def status(pb, ok=True):
    s = pb.StatusResult(status=pb.StatusResult.Success if ok else pb.StatusResult.Failure)
    if not ok:
        s.exception.message = "ValueError: bad"
        s.exception.stack_trace = 'File "x.py", line 1\n  raise ValueError("bad")'
        s.exception.is_user_exception = True
        s.exception.type = "ValueError"
        s.exception.source = "x.py"
        s.logs.add(message="failed", level=pb.RpcLog.Error)
    return s


def typed_data_cases(pb):
    """One TypedData per member of the `data` oneof, plus edge values."""
    T = pb.TypedData
    http = pb.RpcHttp(method="GET", url="http://h/api/x?q=1", status_code="404",
                      enable_content_negotiation=True)
    http.headers["x-a"] = "1"
    http.params["id"] = "7"
    http.query["q"] = "1"
    http.body.bytes = b"\x00\x01body"
    http.rawBody.string = "raw"
    ident = http.identities.add()
    ident.authentication_type.value = "aad"
    ident.name_claim_type.value = ""
    ident.claims.add(type="name", value="ada")
    c = http.cookies.add(name="sid", value="v", same_site=pb.RpcHttpCookie.ExplicitNone)
    c.domain.value = "example.org"
    c.path.value = "/"
    c.expires.value.seconds = 1700000000
    c.expires.value.nanos = 5
    c.secure.value = False  # set to the default: presence must survive
    c.http_only.value = True
    c.max_age.value = 0.0
    http.nullable_headers["h"].value = "v"
    http.nullable_headers["absent"].CopyFrom(pb.NullableString())
    http.nullable_params["p"].value = ""
    http.nullable_query["q"].value = "1"
    cases = {
        "string": T(string="héllo\n\"wörld\" \u2028 \U0001f600"),
        "string_empty": T(string=""),
        "json": T(json='{"a": [1, 2.5, null]}'),
        "bytes": T(bytes=bytes(range(256))),
        "bytes_empty": T(bytes=b""),
        "stream": T(stream=b"\xff\xfe\xfd"),
        "http": T(http=http),
        "int": T(int=-1),
        "int_min": T(int=INT64_MIN),
        "int_max": T(int=INT64_MAX),
        "int_zero": T(int=0),
        "double": T(double=-1.5e-300),
        "double_zero": T(double=0.0),
        "double_inf": T(double=float("inf")),
        "double_ninf": T(double=float("-inf")),
        "double_third": T(double=1 / 3),
        "collection_bytes": T(collection_bytes=pb.CollectionBytes(bytes=[b"", b"a", b"\x00\xff"])),
        "collection_string": T(collection_string=pb.CollectionString(string=["", "x", "ÿ"])),
        "collection_double": T(collection_double=pb.CollectionDouble(double=[0.0, -2.5, 1e308])),
        "collection_sint64": T(collection_sint64=pb.CollectionSInt64(
            sint64=[0, -1, 1, INT64_MIN, INT64_MAX, -300])),
        "model_binding_data": T(model_binding_data=pb.ModelBindingData(
            version="1.0", source="AzureStorageBlobs", content_type="application/json",
            content=b'{"Connection":"c","ContainerName":"k","BlobName":"b"}')),
        "collection_model_binding_data": T(collection_model_binding_data=pb.CollectionModelBindingData(
            model_binding_data=[pb.ModelBindingData(version="1"), pb.ModelBindingData()])),
        "null": T(),
    }
    return cases


def streaming_cases(pb):
    """At least one StreamingMessage per member of the `content` oneof."""
    S = pb.StreamingMessage
    cases = {}

    m = S(request_id="r")
    log = m.rpc_log
    log.invocation_id = "i"
    log.category = "c"
    log.level = pb.RpcLog.Critical
    log.message = "m"
    log.event_id = "e"
    log.exception.message = "x"
    log.properties = "{}"
    log.log_category = pb.RpcLog.CustomMetric
    for name, td in typed_data_cases(pb).items():
        log.propertiesMap[name].CopyFrom(td)
    cases["rpc_log"] = m

    m = S()
    r = m.invocation_request
    r.invocation_id = "inv"
    r.function_id = "fn"
    for name, td in typed_data_cases(pb).items():
        r.input_data.add(name=name, data=td)
    r.input_data.add(name="shm", rpc_shared_memory=pb.RpcSharedMemory(
        name="m", offset=-7, count=INT64_MAX, type=pb.collection_sint64))
    r.input_data.add(name="no_data")
    r.trigger_metadata["headers"].json = "{}"
    r.trigger_metadata["empty"].CopyFrom(pb.TypedData())
    r.trace_context.trace_parent = "00-ab-cd-01"
    r.trace_context.trace_state = "k=v"
    r.trace_context.attributes["a"] = "b"
    r.retry_context.retry_count = -5
    r.retry_context.max_retry_count = INT32_MIN
    r.retry_context.exception.message = "e"
    cases["invocation_request"] = m

    m = S(request_id="w")
    r = m.invocation_response
    r.invocation_id = "inv"
    r.output_data.add(name="out", data=pb.TypedData(string="o"))
    r.output_data.add(name="shm", rpc_shared_memory=pb.RpcSharedMemory(name="n", count=3))
    r.return_value.int = -42
    r.result.CopyFrom(status(pb, ok=False))
    cases["invocation_response"] = m

    cases["file_change_event_request"] = S(file_change_event_request=pb.FileChangeEventRequest(
        type=pb.FileChangeEventRequest.All, full_path="/a/b", name="b"))
    cases["worker_action_response"] = S(worker_action_response=pb.WorkerActionResponse(
        action=pb.WorkerActionResponse.Reload, reason="why"))

    md = pb.RpcFunctionMetadata(name="f", directory="/d", script_file="s.py", entry_point="main",
                                is_proxy=True, language="python", function_id="id",
                                managed_dependency_enabled=True)
    md.bindings["req"].CopyFrom(pb.BindingInfo(type="httpTrigger", direction=pb.BindingInfo.inout,
                                               data_type=pb.BindingInfo.stream))
    md.bindings["req"].properties["k"] = "v"
    md.bindings["out"].CopyFrom(pb.BindingInfo())  # an all-default message value
    md.status.CopyFrom(status(pb))
    md.raw_bindings.extend(['{"type":"httpTrigger"}', ""])
    md.retry_options.max_retry_count = -1
    md.retry_options.delay_interval.seconds = -3
    md.retry_options.delay_interval.nanos = -500
    md.retry_options.minimum_interval.seconds = INT64_MAX
    md.retry_options.maximum_interval.CopyFrom(pb.Duration())
    md.retry_options.retry_strategy = pb.RpcRetryOptions.fixed_delay
    md.properties["worker_indexed"] = "True"
    cases["function_load_request"] = S(function_load_request=pb.FunctionLoadRequest(
        function_id="id", metadata=md, managed_dependency_enabled=True))
    cases["function_load_response"] = S(function_load_response=pb.FunctionLoadResponse(
        function_id="id", result=status(pb, ok=False), is_dependency_downloaded=True))
    cases["worker_status_request"] = S(request_id="guid", worker_status_request=pb.WorkerStatusRequest())
    cases["worker_status_response"] = S(request_id="guid",
                                        worker_status_response=pb.WorkerStatusResponse())
    cases["worker_terminate"] = S(worker_terminate=pb.WorkerTerminate(
        grace_period=pb.Duration(seconds=5)))
    cases["worker_heartbeat"] = S(worker_heartbeat=pb.WorkerHeartbeat())

    m = S()
    wm = m.worker_init_response.worker_metadata
    wm.runtime_name, wm.runtime_version, wm.worker_bitness = "python", "3.11", "x86_64"
    wm.custom_properties["k"] = "v"
    m.worker_init_response.capabilities["RpcHttpBodyOnly"] = "true"
    m.worker_init_response.result.status = pb.StatusResult.Success
    cases["worker_init_response"] = m

    m = S()
    r = m.worker_init_request
    r.host_version = "4.1037.0.0"
    r.capabilities["MultiStream"] = "10"
    r.capabilities["empty"] = ""
    r.log_categories["Host"] = pb.RpcLog.Warning
    r.log_categories["Zero"] = pb.RpcLog.Trace
    r.log_categories["Unknown"] = 99  # open enum: an unknown number
    r.worker_directory = "/w"
    r.function_app_directory = "/app"
    cases["worker_init_request"] = m

    cases["start_stream"] = S(request_id="w", start_stream=pb.StartStream(worker_id="w"))
    cases["invocation_cancel"] = S(invocation_cancel=pb.InvocationCancel(
        invocation_id="inv", grace_period=pb.Duration(seconds=1, nanos=-1)))

    m = S()
    m.function_environment_reload_request.environment_variables["PATH"] = "/bin"
    m.function_environment_reload_request.environment_variables["EMPTY"] = ""
    m.function_environment_reload_request.function_app_directory = "/app"
    cases["function_environment_reload_request"] = m

    m = S()
    r = m.function_environment_reload_response
    r.worker_metadata.runtime_name = "python"
    r.capabilities["x"] = "y"
    r.result.status = pb.StatusResult.Cancelled
    r.capabilities_update_strategy = pb.FunctionEnvironmentReloadResponse.replace
    cases["function_environment_reload_response"] = m

    cases["close_shared_memory_resources_request"] = S(
        close_shared_memory_resources_request=pb.CloseSharedMemoryResourcesRequest(
            map_names=["a", "b"]))
    m = S()
    m.close_shared_memory_resources_response.close_map_results["a"] = True
    m.close_shared_memory_resources_response.close_map_results["b"] = False
    cases["close_shared_memory_resources_response"] = m

    cases["functions_metadata_request"] = S(functions_metadata_request=pb.FunctionsMetadataRequest(
        function_app_directory="/app"))
    cases["function_metadata_response"] = S(function_metadata_response=pb.FunctionMetadataResponse(
        function_metadata_results=[md, pb.RpcFunctionMetadata(name="g")],
        result=status(pb), use_default_metadata_indexing=True))
    cases["function_load_request_collection"] = S(
        function_load_request_collection=pb.FunctionLoadRequestCollection(
            function_load_requests=[pb.FunctionLoadRequest(function_id="a", metadata=md),
                                    pb.FunctionLoadRequest()]))
    cases["function_load_response_collection"] = S(
        function_load_response_collection=pb.FunctionLoadResponseCollection(
            function_load_responses=[pb.FunctionLoadResponse(function_id="a", result=status(pb))]))
    cases["worker_warmup_request"] = S(worker_warmup_request=pb.WorkerWarmupRequest(
        worker_directory="/w"))
    cases["worker_warmup_response"] = S(worker_warmup_response=pb.WorkerWarmupResponse(
        result=status(pb)))

    # Empty payloads: the empty message, and empty members of the oneof.
    cases["empty"] = S()
    cases["empty_request_id_only"] = S(request_id="only")
    cases["empty_rpc_log"] = S(rpc_log=pb.RpcLog())
    cases["empty_invocation_request"] = S(invocation_request=pb.InvocationRequest())
    return cases


def _ids(pb_cases):
    return sorted(pb_cases)


@pytest.fixture(scope="module")
def cases(pb):
    return streaming_cases(pb)


def test_every_oneof_member_is_covered(pb, cases):
    content = {f.name for f in pb.StreamingMessage.DESCRIPTOR.oneofs_by_name["content"].fields}
    assert content <= {m.WhichOneof("content") for m in cases.values()}
    data = {f.name for f in pb.TypedData.DESCRIPTOR.oneofs_by_name["data"].fields}
    assert data <= {td.WhichOneof("data") for td in typed_data_cases(pb).values()}


CASE_NAMES = [
    "rpc_log", "invocation_request", "invocation_response", "file_change_event_request",
    "worker_action_response", "function_load_request", "function_load_response",
    "worker_status_request", "worker_status_response", "worker_terminate", "worker_heartbeat",
    "worker_init_response", "worker_init_request", "start_stream", "invocation_cancel",
    "function_environment_reload_request", "function_environment_reload_response",
    "close_shared_memory_resources_request", "close_shared_memory_resources_response",
    "functions_metadata_request", "function_metadata_response",
    "function_load_request_collection", "function_load_response_collection",
    "worker_warmup_request", "worker_warmup_response", "empty", "empty_request_id_only",
    "empty_rpc_log", "empty_invocation_request",
]


def test_case_list_is_complete(cases):
    assert sorted(CASE_NAMES) == sorted(cases)


@pytest.mark.parametrize("name", CASE_NAMES)
def test_python_to_ours(cli, cases, name):
    msg = cases[name]
    (ours,) = cli.decode(frame(msg.SerializeToString()))
    compare(ours, json_format.MessageToDict(msg))


@pytest.mark.parametrize("name", CASE_NAMES)
def test_ours_to_python(cli, pb, cases, name):
    msg = cases[name]
    (payload,) = cli.encode([json_format.MessageToJson(msg, indent=None)])
    back = pb.StreamingMessage.FromString(payload)
    assert back == msg
    # And our bytes decode to what Python serializes, byte for byte after a
    # deterministic re-serialization on both sides.
    assert back.SerializeToString(deterministic=True) == msg.SerializeToString(deterministic=True)


def test_nan(cli, pb):
    msg = pb.StreamingMessage()
    msg.rpc_log.propertiesMap["n"].double = float("nan")
    msg.rpc_log.propertiesMap["c"].collection_double.double.extend([float("nan"), 1.0])
    (ours,) = cli.decode(frame(msg.SerializeToString()))
    compare(ours, json_format.MessageToDict(msg))
    (payload,) = cli.encode([json_format.MessageToJson(msg, indent=None)])
    back = pb.StreamingMessage.FromString(payload)
    assert math.isnan(back.rpc_log.propertiesMap["n"].double)
    assert json_format.MessageToDict(back) == json_format.MessageToDict(msg)


def test_stream_of_every_case(cli, cases):
    """All cases in one stream: one JSON line per frame, in order."""
    msgs = [cases[n] for n in CASE_NAMES]
    ours = cli.decode(b"".join(frame(m.SerializeToString()) for m in msgs))
    assert len(ours) == len(msgs)
    for o, m in zip(ours, msgs):
        compare(o, json_format.MessageToDict(m))


def test_unknown_fields_are_tolerated(cli, pb):
    msg = pb.StreamingMessage(request_id="r", start_stream=pb.StartStream(worker_id="w"))
    # Field 99 (string) and field 3 of StartStream (varint) are unknown to the schema.
    inner = msg.start_stream.SerializeToString() + b"\x18\x07"
    data = b"\x0a\x01r" + b"\xa2\x01" + bytes([len(inner)]) + inner + b"\x9a\x06\x03xyz"
    (ours,) = cli.decode(frame(data))
    compare(ours, json_format.MessageToDict(msg))


def test_proto_names_and_enum_numbers_accepted(cli, pb):
    line = ('{"request_id": "r", "rpc_log": {"level": 3, "log_category": "System", '
            '"propertiesMap": {"b": {"bytes": "-_8"}}}}')
    (payload,) = cli.encode([line])
    back = pb.StreamingMessage.FromString(payload)
    want = json_format.Parse(line, pb.StreamingMessage())
    assert back == want
    assert back.rpc_log.propertiesMap["b"].bytes == b"\xfb\xff"


def test_huge_payload(cli, pb):
    """A 64 MiB + 3 bytes payload both ways."""
    blob = bytes(range(256)) * (1 << 18) + b"end"
    assert len(blob) >= 64 * 1024 * 1024
    msg = pb.StreamingMessage(request_id="big")
    msg.invocation_response.return_value.bytes = blob
    (ours,) = cli.decode(frame(msg.SerializeToString()))
    compare(ours, json_format.MessageToDict(msg))
    (payload,) = cli.encode([json_format.MessageToJson(msg, indent=None)])
    assert pb.StreamingMessage.FromString(payload) == msg


# ---- CLI behaviour -----------------------------------------------------------------


def test_decode_error_keeps_earlier_output(cli, pb):
    good = frame(pb.StreamingMessage(request_id="a").SerializeToString())
    data = good + good + b"\x00\x00\x00\x00\x09abc"  # third frame truncated
    p = cli.run(["decode"], data, check=False)
    assert p.returncode != 0
    assert p.stdout.decode().splitlines() == ['{"requestId":"a"}'] * 2
    err = p.stderr.decode()
    assert "frame 2" in err and f"byte {2 * len(good)}" in err and "truncated" in err


def test_decode_compressed_and_bad_protobuf(cli, pb):
    good = frame(pb.StreamingMessage(request_id="a").SerializeToString())
    p = cli.run(["decode"], good + b"\x01\x00\x00\x00\x01x", check=False)
    assert p.returncode != 0 and p.stdout == b'{"requestId":"a"}\n'
    assert "frame 1 at byte 8" in p.stderr.decode() and "compressed" in p.stderr.decode()
    p = cli.run(["decode"], good + frame(b"\x0a\x05ab"), check=False)
    assert p.returncode != 0 and p.stdout == b'{"requestId":"a"}\n'
    assert "frame 1 at byte 8" in p.stderr.decode() and "malformed protobuf" in p.stderr.decode()


def test_max_message_length(cli, pb):
    data = frame(pb.StreamingMessage(request_id="abcdef").SerializeToString())  # 8 bytes
    assert len(cli.decode(data, "--max-message-length", "8")) == 1
    p = cli.run(["decode", "--max-message-length", "7"], data, check=False)
    assert p.returncode != 0 and "over the limit of 7 bytes" in p.stderr.decode()
    p = cli.run(["encode", "--max-message-length=7"], b'{"requestId":"abcdef"}\n', check=False)
    assert p.returncode != 0 and "line 1" in p.stderr.decode()
    p = cli.run(["decode", "--max-message-length", "zero"], b"", check=False)
    assert p.returncode == 2


def test_encode_error_names_line(cli):
    p = cli.run(["encode"], b'{"requestId":"a"}\n\n{"rpcLog":{"bogus":1}}\n', check=False)
    assert p.returncode != 0
    assert split_frames(p.stdout) == [b"\x0a\x01a"]
    err = p.stderr.decode()
    assert "line 3" in err and '"bogus"' in err and "AzureFunctionsRpcMessages.RpcLog" in err


def test_help_and_version(cli):
    p = cli.run(["--help"], b"")
    assert b"decode" in p.stdout and b"encode" in p.stdout
    assert cli.run(["--version"], b"").stdout.startswith(b"azfunc 0.")
    assert cli.run(["bogus"], b"", check=False).returncode == 2


def test_file_argument(cli, tmp_path, pb):
    f = tmp_path / "in.bin"
    f.write_bytes(frame(pb.StreamingMessage(request_id="f").SerializeToString()))
    assert cli.run(["decode", str(f)], b"").stdout == b'{"requestId":"f"}\n'
    p = cli.run(["decode", str(tmp_path / "missing")], b"", check=False)
    assert p.returncode == 1 and b"cannot open" in p.stderr
