# Driven by tests/host/test_invocations.py through the host simulator.
import asyncio
import logging
import os
import time

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

# Outside any invocation: a System log (the host drops User logs without one).
logging.info("worker_v2_invoke imported")


@app.route(route="hello")
def hello(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name", "world")
    logging.info("hello %s", name)
    logging.getLogger("my.logger").warning("careful")
    return func.HttpResponse(f"Hello, {name}")


@app.route(route="syslog")
def syslog(req: func.HttpRequest) -> str:
    logging.getLogger("azure_functions_worker").warning("a worker note")
    return "ok"


@app.route(route="boom")
def boom(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError("bad input")


@app.route(route="setting")
def setting(req: func.HttpRequest) -> str:
    return os.environ.get("AZF_WORKER_TEST_SETTING", "unset")


@app.route(route="forever")
async def forever(req: func.HttpRequest) -> str:
    logging.info("waiting")
    await asyncio.Event().wait()  # only a cancel ends it
    return "never"


@app.route(route="block")
def block(req: func.HttpRequest) -> str:
    """Blocks (sync, on the pool) until the file named by ?marker= exists."""
    marker = req.params["marker"]
    logging.info("blocking")
    while not os.path.exists(marker):
        time.sleep(0.02)
    return "done"


@app.route(route="spin")
def spin(req: func.HttpRequest) -> str:
    """Keeps the GIL busy (sync, on the pool) for ?seconds=."""
    logging.info("spinning")
    end = time.monotonic() + float(req.params["seconds"])
    while time.monotonic() < end:
        pass
    return "spun"
