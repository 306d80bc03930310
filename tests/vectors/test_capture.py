"""The sample capture examples/captures/worker-start.bin: up to date with
make_capture.py, and `azfunc decode` prints what json_format prints."""
import os

from google.protobuf import json_format

import make_capture
from grpc_frames import ROOT, split_frames
from test_vectors import compare

CAPTURE = os.path.join(ROOT, "examples", "captures", "worker-start.bin")
EXPECTED = os.path.join(ROOT, "examples", "captures", "worker-start.jsonl")


def test_capture_is_up_to_date(pb):
    with open(CAPTURE, "rb") as f:
        assert f.read() == make_capture.capture_bytes(pb), \
            "regenerate with: .venv/bin/python tests/vectors/make_capture.py"


def test_decode_capture(cli, pb):
    msgs = make_capture.build_messages(pb)
    with open(CAPTURE, "rb") as f:
        data = f.read()
    assert len(split_frames(data)) == len(msgs) == 8
    p = cli.run(["decode", CAPTURE], b"")
    lines = p.stdout.decode().splitlines()
    ours = cli.decode(data)
    assert len(ours) == len(msgs)
    for o, m in zip(ours, msgs):
        compare(o, json_format.MessageToDict(m))
    with open(EXPECTED) as f:
        assert lines == f.read().splitlines()
