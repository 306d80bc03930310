"""libazfunc for Python: the FunctionRpc codec, function apps invoked
in-process through the worker's own binding path, and the local runner.

    azfunc.codec  decode/encode StreamingMessage bytes and gRPC frames
    azfunc.app    open an app directory, list and invoke its functions
    python -m azfunc start DIR   the local runner (azfunc start)
"""
from ._azfunc import Error, library_version

__all__ = ['Error', 'library_version']
