"""Functions that misbehave on purpose, for tests/runner/test_hostile_clients.py."""
import ctypes
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"Hello, {req.params.get('name') or 'world'}!")


@app.route(route="status/{code:int}", methods=["GET", "HEAD"])
def status(req: func.HttpRequest) -> func.HttpResponse:
    # A body the protocol forbids for 1xx/204/304 and for HEAD: the runner must drop it.
    return func.HttpResponse("a body", status_code=int(req.route_params["code"]))


@app.route(route="big", methods=["GET", "HEAD"])
def big(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(b"x" * (1 << 20), mimetype="application/octet-stream")


@app.route(route="items/{id:int}")
def items(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"item {req.route_params['id']!r}")


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body(), mimetype="application/octet-stream")


@app.route(route="count")
def count(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"{len(req.headers)} headers, {len(req.params)} params")


@app.function_name(name="exit")
@app.route(route="exit")
def exit_(req: func.HttpRequest) -> func.HttpResponse:
    os._exit(7)


@app.route(route="segfault")
def segfault(req: func.HttpRequest) -> func.HttpResponse:
    ctypes.string_at(0)  # a crash in C code, as a broken extension would
    return func.HttpResponse("unreachable")


@app.route(route="hang")
def hang(req: func.HttpRequest) -> func.HttpResponse:
    time.sleep(float(req.params.get("seconds") or 600))  # a sync function that never returns
    return func.HttpResponse("woke up")
