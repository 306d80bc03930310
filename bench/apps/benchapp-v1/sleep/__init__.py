"""bench function sleep (v1 model; same behaviour as in benchapp)."""
import asyncio

import azure.functions as func


async def main(req: func.HttpRequest) -> func.HttpResponse:
    await asyncio.sleep(0.1)
    return func.HttpResponse(b'hello')
