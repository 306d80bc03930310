"""StreamingMessage <-> dict, in the proto3 canonical JSON view that
`azfunc decode` prints (lowerCamelCase names, 64-bit integers as strings,
bytes in base64, enums by name)."""
import json

from . import _azfunc
from ._azfunc import Error


class CodecError(Error, ValueError):
    """Malformed input: str(e) is the library's message, e.code the AZF_E_* code."""

    def __str__(self):
        return self.args[0]

    @property
    def code(self):
        return self.args[1]


def _call(fn, *args):
    try:
        return fn(*args)
    except Error as exc:
        raise CodecError(*exc.args) from None


def to_json(data):
    """Serialised StreamingMessage bytes -> its JSON text (one line)."""
    return _call(_azfunc.decode, data)


def decode(data):
    """Serialised StreamingMessage bytes -> dict."""
    return json.loads(to_json(data))


def _text(message):
    return message if isinstance(message, str) else json.dumps(message)


def encode(message):
    """dict (or JSON text) -> serialised StreamingMessage bytes."""
    return _call(_azfunc.encode, _text(message), False)


def encode_frame(message):
    """dict (or JSON text) -> one uncompressed gRPC frame (5-byte header + message)."""
    return _call(_azfunc.encode, _text(message), True)


def split_frames(data):
    """gRPC frames -> ([message bytes], pending): pending counts the bytes of
    an incomplete last frame (0 when data ends at a frame boundary)."""
    return _call(_azfunc.split_frames, data)


def decode_frames(data):
    """gRPC frames -> [dict]; an incomplete last frame raises CodecError."""
    messages, pending = split_frames(data)
    if pending:
        raise CodecError(f'the data ends inside a frame ({pending} bytes pending)', -20)
    return [decode(m) for m in messages]
