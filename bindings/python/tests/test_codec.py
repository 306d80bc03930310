"""azfunc.codec against messages built and parsed by Google's protobuf
runtime (FunctionRpc.proto compiled by grpc_tools)."""
import base64
import importlib.util
import pathlib
import subprocess
import sys

import pytest
from google.protobuf import json_format

import azfunc
from azfunc import codec

PROTO = pathlib.Path(__file__).resolve().parents[3] / 'proto' / 'FunctionRpc.proto'


@pytest.fixture(scope='module')
def pb(tmp_path_factory):
    out = tmp_path_factory.mktemp('proto')
    subprocess.run([sys.executable, '-m', 'grpc_tools.protoc', f'-I{PROTO.parent}',
                    f'--python_out={out}', PROTO.name], check=True)
    spec = importlib.util.spec_from_file_location('FunctionRpc_pb2', out / 'FunctionRpc_pb2.py')
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def invocation(pb):
    m = pb.StreamingMessage(request_id='r-1')
    req = m.invocation_request
    req.invocation_id = 'inv-1'
    req.function_id = 'fn-1'
    d = req.input_data.add()
    d.name = 'req'
    d.data.http.method = 'POST'
    d.data.http.url = 'http://localhost/api/x?a=b'
    d.data.http.headers['content-type'] = 'application/json'
    d.data.http.body.bytes = b'\x00\x01{"a": 1}'
    q = req.input_data.add()
    q.name = 'n'
    q.data.int = -(2 ** 40)
    req.trigger_metadata['sys'].json = '{"x": 1}'
    return m


def test_decode_matches_json_format(pb):
    m = invocation(pb)
    got = codec.decode(m.SerializeToString())
    assert got == json_format.MessageToDict(m)
    assert got['invocationRequest']['inputData'][1]['data']['int'] == str(-(2 ** 40))
    body = got['invocationRequest']['inputData'][0]['data']['http']['body']['bytes']
    assert base64.b64decode(body) == b'\x00\x01{"a": 1}'


def test_encode_parses_back(pb):
    m = invocation(pb)
    data = codec.encode(json_format.MessageToDict(m))
    back = pb.StreamingMessage()
    back.ParseFromString(data)
    assert back == m
    # JSON text and proto field names are accepted too
    assert codec.encode('{"request_id": "r-1"}') == pb.StreamingMessage(
        request_id='r-1').SerializeToString()


@pytest.mark.parametrize('msg', [
    {'requestId': 'a', 'workerHeartbeat': {}},
    {'startStream': {'workerId': 'w'}},
    {'rpcLog': {'invocationId': 'i', 'level': 'Error', 'message': 'm',
                'logCategory': 'System'}},
    {'invocationResponse': {'invocationId': 'i', 'result': {'status': 'Success',
     'exception': {'message': 'TypeError: x', 'stackTrace': 's'}},
     'returnValue': {'double': 'NaN'}}},
    {},
])
def test_round_trip(pb, msg):
    data = codec.encode(msg)
    assert codec.decode(data) == msg
    assert json_format.MessageToDict(pb.StreamingMessage.FromString(data)) == msg


def test_frames(pb):
    msgs = [{'requestId': str(i), 'workerHeartbeat': {}} for i in range(3)]
    stream = b''.join(codec.encode_frame(m) for m in msgs)
    first = codec.encode(msgs[0])
    assert stream[:5] == b'\x00' + len(first).to_bytes(4, 'big')
    assert codec.decode_frames(stream) == msgs
    parts, pending = codec.split_frames(stream[:-2])
    assert [codec.decode(p) for p in parts] == msgs[:2] and pending == len(stream) // 3 - 2
    assert codec.split_frames(b'') == ([], 0)


def test_errors():
    with pytest.raises(codec.CodecError) as e:
        codec.decode(b'\xff\xff\xff')
    assert e.value.code == -3 and isinstance(e.value, ValueError)
    assert isinstance(e.value, azfunc.Error)
    with pytest.raises(codec.CodecError, match='noSuchField'):
        codec.encode({'noSuchField': 1})
    with pytest.raises(codec.CodecError):
        codec.encode('{not json')
    with pytest.raises(codec.CodecError):
        codec.decode_frames(b'\x07\x00\x00\x00\x00')  # bad compressed flag
    with pytest.raises(codec.CodecError, match='ends inside a frame'):
        codec.decode_frames(b'\x00\x00\x00\x00\x09abc')
    with pytest.raises(TypeError):
        codec.decode('text is not bytes')
