# Driven by tests/host/test_hostile.py: a host that sends what no real host would.
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="echo")
def echo(req: func.HttpRequest) -> func.HttpResponse:
    """The body back, after its length: a cut value would show."""
    body = req.get_body()
    return func.HttpResponse(b"%d:" % len(body) + body)


@app.route(route="big")
def big(req: func.HttpRequest) -> func.HttpResponse:
    """A 100 KB response."""
    return func.HttpResponse(b"x" * 100_000)


@app.route(route="nul")
def nul(req: func.HttpRequest) -> str:
    """A str holding a NUL: it must arrive whole or fail, never cut."""
    return "abc\x00def"


@app.route(route="lognul")
def lognul(req: func.HttpRequest) -> str:
    """Logs, then raises, text holding a NUL: the host must receive both whole."""
    logging.info("before\x00after")
    raise ValueError("bad\x00value")


@app.route(route="size")
def size(req: func.HttpRequest) -> str:
    """The body's length only: a 128 MiB request needs no 128 MiB answer."""
    return str(len(req.get_body()))
