"""Shared-memory data transfer through the host simulator (host-protocol.md §1.6, §3.3, §6.1,
§6.3, §10.19): the host puts inputs in map files, large bytes/string outputs come back as
rpc_shared_memory when the worker's environment enables it, CloseSharedMemoryResources frees
them. Every test uses its own FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES. App: tests/apps/shm_v2."""
import re
import shutil
import struct
import uuid
from pathlib import Path

import pytest

from azhost import pb

APPS = Path(__file__).resolve().parents[1] / "apps"
SUCCESS, FAILURE = 1, 0
BYTES, STRING, JSON = 3, 1, 2
MIB = 1 << 20
ENABLE = "FUNCTIONS_WORKER_SHARED_MEMORY_DATA_TRANSFER_ENABLED"


def start(tmp_path, make_host, worker_exe, enabled=True, capabilities=None):
    app = tmp_path / "shm_v2"
    shutil.copytree(APPS / "shm_v2", app, ignore=shutil.ignore_patterns("__pycache__"))
    shm = tmp_path / "shm"
    shm.mkdir()
    # The first directory cannot hold AzureFunctions (it is under a regular file): the
    # worker writes to the next one, where the host reads too.
    (tmp_path / "file").write_bytes(b"")
    env = {"FUNCTIONS_UNIX_SHARED_MEMORY_DIRECTORIES": f"{tmp_path / 'file' / 'x'},{shm}"}
    if enabled:
        env[ENABLE] = " Yes"
    h = make_host(worker_exe, app_dir=app, env=env)
    caps = {"MultiStream": "10", **(capabilities or {})}
    init = h.init(capabilities=caps, function_app_directory=app)
    assert init.result.status == SUCCESS
    assert init.capabilities["SharedMemoryDataTransfer"] == "true"
    md = h.metadata(function_app_directory=app)
    assert md.result.status == SUCCESS, md.result.exception.message
    for load in h.load_indexed(md).values():
        assert load.result.status == SUCCESS, load.result.exception.message
    return h, {f.name: f.function_id for f in md.function_metadata_results}, shm


def put_map(base, content, flag=1, length=None):
    """A map as the host writes it: flag byte, little-endian int64 length, content."""
    name = str(uuid.uuid4())
    d = base / "AzureFunctions"
    d.mkdir(exist_ok=True)
    (d / name).write_bytes(bytes([flag]) + struct.pack("<q", len(content) if length is None else length)
                           + content)
    return name


def read_map(base, name):
    raw = (base / "AzureFunctions" / name).read_bytes()
    assert raw[0] == 1
    (length,) = struct.unpack("<q", raw[1:9])
    assert length == len(raw) - 9
    return raw[9:]


def shm_input(name, offset, count, typ):
    return [pb.ParameterBinding(name="req", rpc_shared_memory=pb.RpcSharedMemory(
        name=name, offset=offset, count=count, type=typ))]


def string_input(s):
    return [pb.ParameterBinding(name="req", data=pb.TypedData(string=s))]


def close(h, names):
    h.send(close_shared_memory_resources_request=pb.CloseSharedMemoryResourcesRequest(map_names=names))
    m = h.expect("close_shared_memory_resources_response")
    assert m.request_id == h.request_id  # the worker's, as the official worker stamps it
    return dict(m.close_shared_memory_resources_response.close_map_results)


def test_inputs_from_shared_memory(tmp_path, make_host, worker_exe):
    h, ids, shm = start(tmp_path, make_host, worker_exe)
    data = bytes(range(256)) * (2 * MIB // 256)
    name = put_map(shm, data)
    r = h.invoke(ids["echo"], shm_input(name, 0, len(data), BYTES)).response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.string == "bytes:%d:%s" % (len(data), data[:8].hex())
    # offset/count select the bytes; string maps are UTF-8.
    r = h.invoke(ids["echo"], shm_input(name, 16, 5, BYTES)).response
    assert r.return_value.string == "bytes:5:" + data[16:21].hex()
    text = put_map(shm, "héllo wörld".encode())
    r = h.invoke(ids["echo"], shm_input(text, 0, len("héllo wörld".encode()), STRING)).response
    assert r.result.status == SUCCESS, r.result.exception.message
    assert r.return_value.string == "str:11:héllo wö"
    # The worker only read the host's maps: they stay, and are not the worker's to close.
    assert (shm / "AzureFunctions" / name).exists()
    assert close(h, [name]) == {name: False}
    assert (shm / "AzureFunctions" / name).exists()


@pytest.mark.parametrize("case,pattern", [
    ("missing", r"ValueError: cannot read input 'req' from shared memory: .*does not exist"),
    ("flag", r"ValueError: cannot read input 'req' from shared memory: .*not initialised"),
    ("length", r"ValueError: cannot read input 'req' from shared memory: .*bad content length"),
    ("range", r"ValueError: cannot read input 'req' from shared memory: offset 3 and count 10 .*outside"),
    ("type", r"ValueError: input 'req' in shared memory has type json; only bytes and string"),
])
def test_bad_maps_fail_only_that_invocation(case, pattern, tmp_path, make_host, worker_exe):
    h, ids, shm = start(tmp_path, make_host, worker_exe)
    good = put_map(shm, b"fine")
    binding = {
        "missing": shm_input(str(uuid.uuid4()), 0, 1, BYTES),
        "flag": shm_input(put_map(shm, b"abc", flag=0), 0, 3, BYTES),
        "length": shm_input(put_map(shm, b"abc", length=1000), 0, 3, BYTES),
        "range": shm_input(put_map(shm, b"abcdefgh"), 3, 10, BYTES),
        "type": shm_input(good, 0, 4, JSON),
    }[case]
    r = h.invoke(ids["echo"], binding).response
    assert r.result.status == FAILURE
    assert re.match(pattern, r.result.exception.message), r.result.exception.message
    # The worker goes on.
    r = h.invoke(ids["echo"], shm_input(good, 0, 4, BYTES)).response
    assert r.result.status == SUCCESS and r.return_value.string == "bytes:4:" + b"fine".hex()


def test_large_outputs_go_to_shared_memory_and_close_deletes(tmp_path, make_host, worker_exe):
    h, ids, shm = start(tmp_path, make_host, worker_exe)
    names = []
    for req, typ, want in [
        (f"bytes:{MIB}", BYTES, bytes(i % 251 for i in range(MIB))),
        (f"string:{MIB // 2}", STRING, b"s" * (MIB // 2)),  # chars x 2 = 1 MiB, as .NET counts
        (f"wide:{MIB // 2}", STRING, "\u00e9".encode() * (MIB // 2)),
    ]:
        r = h.invoke(ids["make"], string_input(req)).response
        assert r.result.status == SUCCESS, r.result.exception.message
        [out] = r.output_data
        assert out.name == "out" and out.WhichOneof("rpc_data") == "rpc_shared_memory", req
        sm = out.rpc_shared_memory
        assert str(uuid.UUID(sm.name, version=4)) == sm.name
        assert (sm.offset, sm.count, sm.type) == (0, len(want), typ)
        names.append(sm.name)
    base = shm
    assert read_map(base, names[0]) == bytes(i % 251 for i in range(MIB))
    assert read_map(base, names[2]) == "\u00e9".encode() * (MIB // 2)
    # The return value stays inline, as the official worker sends it.
    r = h.invoke(ids["big_return"], string_input(str(2 * MIB))).response
    assert r.result.status == SUCCESS and r.return_value.bytes == b"r" * (2 * MIB)
    unknown = str(uuid.uuid4())
    assert close(h, names + [unknown]) == {**{n: True for n in names}, unknown: False}
    assert not any((base / "AzureFunctions" / n).exists() for n in names)
    assert close(h, names[:1]) == {names[0]: False}  # already closed


def test_small_outputs_inline(tmp_path, make_host, worker_exe):
    h, ids, shm = start(tmp_path, make_host, worker_exe)
    for req, field in [(f"bytes:{MIB - 1}", "bytes"), (f"string:{MIB // 2 - 1}", "string")]:
        r = h.invoke(ids["make"], string_input(req)).response
        assert r.result.status == SUCCESS, r.result.exception.message
        [out] = r.output_data
        assert out.WhichOneof("rpc_data") == "data" and out.data.WhichOneof("data") == field


def test_disabled_outputs_inline(tmp_path, make_host, worker_exe):
    h, ids, shm = start(tmp_path, make_host, worker_exe, enabled=False)
    r = h.invoke(ids["make"], string_input(f"bytes:{2 * MIB}")).response
    assert r.result.status == SUCCESS, r.result.exception.message
    [out] = r.output_data
    assert out.WhichOneof("rpc_data") == "data" and len(out.data.bytes) == 2 * MIB
    assert not (shm / "AzureFunctions").exists()


def test_function_data_cache_keeps_files(tmp_path, make_host, worker_exe):
    h, ids, shm = start(tmp_path, make_host, worker_exe, capabilities={"FunctionDataCache": "true"})
    r = h.invoke(ids["make"], string_input(f"bytes:{MIB}")).response
    name = r.output_data[0].rpc_shared_memory.name
    assert close(h, [name]) == {name: True}
    assert (shm / "AzureFunctions" / name).exists()  # the host's cache owns it now
    assert close(h, [name]) == {name: False}  # the reference was dropped
