# HTTP streaming whose server cannot start (its serve() fails at once): the worker must
# not advertise HttpUri and its WorkerInitResponse says why (tests/host/test_http_stream.py).
import azure.functions as func
from azurefunctions.extensions.http.fastapi import PlainTextResponse, Request
from azurefunctions.extensions.http.fastapi import web


async def _serve(self):
    raise OSError("address unavailable for this test")

web.WebServer.serve = _serve

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello", methods=["GET"])
async def hello(req: Request) -> PlainTextResponse:
    return PlainTextResponse("hello")
