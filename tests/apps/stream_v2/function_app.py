# HTTP streaming through azurefunctions-extensions-http-fastapi. Driven by
# tests/host/test_http_stream.py (the host's proxy), tests/runner (azfunc
# start) and bench/http-stream.
import asyncio
import hashlib
import logging
import os
import time

import azure.functions as func
from azurefunctions.extensions.http.fastapi import (JSONResponse, Request,
                                                    StreamingResponse)

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="chunks/{count:int}", methods=["GET"])
async def chunks(req: Request) -> StreamingResponse:
    count = int(req.path_params["count"])
    logging.info("streaming %d chunks", count)

    async def gen():
        for i in range(count):
            yield f"chunk {i}\n".encode()
            await asyncio.sleep(0)
    return StreamingResponse(gen(), media_type="text/plain")


@app.route(route="bytes/{mb:int}", methods=["GET"])
def many_bytes(req: Request) -> StreamingResponse:
    """mb MiB of zeros in 64 KiB pieces, produced as they are sent."""
    piece = bytes(65536)
    total = int(req.path_params["mb"]) * 16

    def gen():
        for _ in range(total):
            yield piece
    return StreamingResponse(gen(), media_type="application/octet-stream")


@app.route(route="sse", methods=["GET"])
async def sse(req: Request) -> StreamingResponse:
    """Server-sent events; after the first, the rest wait until the file named by
    ?marker= exists (bounded: 30 s), so a test can see the first arrive alone."""
    marker = req.query_params.get("marker")

    async def gen():
        yield "data: event 0\n\n"
        deadline = time.monotonic() + 30
        while marker and not os.path.exists(marker) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        for i in (1, 2):
            yield f"data: event {i}\n\n"
    return StreamingResponse(gen(), media_type="text/event-stream")


@app.route(route="upload", methods=["POST"])
async def upload(req: Request) -> JSONResponse:
    """Reads the body as it arrives: its size, its digest, how many pieces."""
    h, size, pieces = hashlib.sha256(), 0, 0
    async for piece in req.stream():
        h.update(piece)
        size += len(piece)
        pieces += bool(piece)
    return JSONResponse({"size": size, "sha256": h.hexdigest(), "pieces": pieces})


@app.route(route="params/{name}/{n:int}", methods=["GET"])
def params(req: Request) -> JSONResponse:
    return JSONResponse({"path_params": dict(req.path_params),
                         "query": dict(req.query_params), "method": req.method})


@app.route(route="boom", methods=["GET"])
async def boom(req: Request) -> JSONResponse:
    raise ValueError("stream boom")


@app.route(route="endless", methods=["GET"])
async def endless(req: Request) -> StreamingResponse:
    """One chunk, then more until the client goes away (bounded: 60 s)."""
    async def gen():
        yield b"first\n"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            await asyncio.sleep(0.05)
            yield b"more\n"
    return StreamingResponse(gen(), media_type="text/plain")


@app.timer_trigger(schedule="0 0 0 1 1 *", arg_name="timer", run_on_startup=False)
def yearly(timer: func.TimerRequest) -> None:
    logging.info("timer %s", os.getpid())


class EchoResponse(StreamingResponse):
    """Streams only. Starlette's StreamingResponse also waits for the client to go away
    by reading the request's messages (under uvicorn's ASGI spec 2.3), and so takes the
    upload's pieces from a body iterator that reads the request while responding."""

    async def __call__(self, scope, receive, send):
        await self.stream_response(send)


@app.route(route="echo", methods=["POST"])
async def echo(req: Request) -> StreamingResponse:
    """Each piece of the upload back as soon as it arrives."""
    async def gen():
        async for piece in req.stream():
            if piece:
                yield piece
    return EchoResponse(gen(), media_type="application/octet-stream")
