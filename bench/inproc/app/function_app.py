"""In-process benchmark app: `hello` is the bench app's sync hello; `floor`
calls hello's Python function directly N times with a prebuilt HttpRequest and
returns the mean nanoseconds per call (the floor the C API path is compared to).
"""
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_HELLO = b"hello"


def _hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_HELLO)


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return _hello(req)


@app.route(route="floor")
def floor(req: func.HttpRequest) -> func.HttpResponse:
    n = int(req.params.get("n") or req.headers.get("x-n") or "100000")
    prebuilt = func.HttpRequest("GET", "http://localhost/api/hello", body=b"")
    target = _hello
    t0 = time.perf_counter_ns()
    for _ in range(n):
        target(prebuilt)
    return func.HttpResponse(str((time.perf_counter_ns() - t0) / n))
