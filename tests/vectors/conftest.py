"""Fixtures for the cross-implementation vectors: Google's Python protobuf runtime
on one side, our codec (through the azfunc CLI) on the other."""
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import make_capture  # noqa: E402
from grpc_frames import ROOT, split_frames  # noqa: E402


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    """Our schema compiled by grpc_tools.protoc and imported."""
    return make_capture.compile_proto(str(tmp_path_factory.mktemp("pb")))


class Cli:
    def __init__(self, path):
        self.path = path

    def run(self, args, data, check=True):
        p = subprocess.run([self.path] + args, input=data, capture_output=True)
        if check and p.returncode != 0:
            raise AssertionError(f"azfunc {' '.join(args)} failed ({p.returncode}): "
                                 f"{p.stderr.decode(errors='replace')}")
        return p

    def decode(self, frames, *args):
        """Frames in, parsed JSON objects out (one per line)."""
        out = self.run(["decode", *args], frames).stdout
        return [json.loads(line) for line in out.decode("utf-8").split("\n") if line]

    def encode(self, json_lines, *args):
        """JSON lines in, the payloads of the frames out."""
        return split_frames(self.run(["encode", *args], "".join(
            line + "\n" for line in json_lines).encode("utf-8")).stdout)


@pytest.fixture(scope="session")
def cli():
    build = os.environ.get("AZF_BUILD_DIR", "build")
    if not os.path.isabs(build):
        build = os.path.join(ROOT, build)
    path = os.path.join(build, "bin", "azfunc")
    assert os.access(path, os.X_OK), f"{path} not found: build first (scripts/build.sh)"
    return Cli(path)
