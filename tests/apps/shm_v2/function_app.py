# Shared-memory data transfer (tests/host/test_shared_memory.py).
import azure.functions as func

app = func.FunctionApp()


def _trigger(name):
    return app.generic_trigger(arg_name="req", type="customTrigger")


@app.function_name("echo")
@_trigger("echo")
def echo(req) -> str:
    # What arrived: its type, length and first bytes.
    head = req[:8] if isinstance(req, str) else req[:8].hex()
    return f"{type(req).__name__}:{len(req)}:{head}"


@app.function_name("make")
@_trigger("make")
@app.generic_output_binding(arg_name="out", type="customOut")
def make(req: str, out: func.Out[bytes]) -> str:
    # req is "<bytes|string>:<n>": out gets n bytes (or n characters of U+00E9 for "wide").
    kind, n = req.split(":")
    n = int(n)
    if kind == "bytes":
        out.set(bytes(i % 251 for i in range(n)))
    elif kind == "wide":
        out.set("\u00e9" * n)
    else:
        out.set("s" * n)
    return "ok"


@app.function_name("big_return")
@_trigger("big_return")
def big_return(req: str) -> bytes:
    # The return value always goes inline, like the official worker.
    return b"r" * int(req)
