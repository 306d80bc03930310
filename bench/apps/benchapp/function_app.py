"""The benchmark app (v2 programming model, stdlib + azure-functions only).

hello: sync HTTP hello; echo: returns the request body; sleep: async 0.1 s;
asleep0/slow: async with no / short waits; boom: raises; logthreads: logs from
threads; block: a sync function that never returns (terminate drain test).
"""
import asyncio
import logging
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

_HELLO = b"hello"


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(_HELLO)


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body())


@app.route(route="sleep")
async def sleep(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.1)
    return func.HttpResponse(_HELLO)


@app.route(route="asleep0")
async def asleep0(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0)
    return func.HttpResponse(_HELLO)


@app.route(route="slow")
async def slow(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.01)
    return func.HttpResponse(_HELLO)


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("boom")


@app.route(route="logthreads")
def logthreads(req: func.HttpRequest) -> func.HttpResponse:
    threads = [threading.Thread(target=logging.info, args=("from thread %d", i))
               for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return func.HttpResponse(_HELLO)


@app.route(route="block")
def block(req: func.HttpRequest) -> func.HttpResponse:
    threading.Event().wait()
    return func.HttpResponse(_HELLO)
