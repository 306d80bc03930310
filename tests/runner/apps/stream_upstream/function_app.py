# HTTP streaming with a stand-in for the app's HTTP server: the test
# (tests/runner/test_runner_stream.py) listens on the port AZF_TEST_UPSTREAM_PORT
# names, so it sees exactly what `azfunc start` forwards and answers as it likes.
# The extension's server never runs; the worker advertises that port as its HttpUri
# once a connection to it succeeds (the test's listener). Invocations end when their
# request does not reach the worker (AZF_HTTP_PROXY_TIMEOUT_SECONDS).
import asyncio
import os

import _azfunc_httpstream
import azure.functions as func
from azurefunctions.extensions.http.fastapi import PlainTextResponse, Request, web

_azfunc_httpstream._free_port = lambda host: int(os.environ["AZF_TEST_UPSTREAM_PORT"])


async def _stand_in(self):
    await asyncio.Event().wait()

web.WebServer.serve = _stand_in

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="up/{*rest}", methods=["GET", "POST", "PUT", "HEAD"])
async def up(req: Request) -> PlainTextResponse:
    return PlainTextResponse("not reached: the test answers")
