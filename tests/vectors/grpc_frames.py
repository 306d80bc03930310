"""gRPC length-prefixed frames for the vector tests (a module of its own: test modules
must not import from conftest, whose module name every pytest suite shares)."""
import os
import struct

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def frame(payload):
    return b"\x00" + struct.pack(">I", len(payload)) + payload


def split_frames(data):
    out, pos = [], 0
    while pos < len(data):
        assert data[pos] == 0, f"compressed flag at {pos}"
        (n,) = struct.unpack(">I", data[pos + 1:pos + 5])
        out.append(data[pos + 5:pos + 5 + n])
        assert len(out[-1]) == n, "truncated frame"
        pos += 5 + n
    return out
