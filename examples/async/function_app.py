import asyncio

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="sleep")
async def sleep(req: func.HttpRequest) -> func.HttpResponse:
    seconds = float(req.params.get("seconds", "0.1"))
    await asyncio.sleep(seconds)
    return func.HttpResponse(f"slept {seconds}s on the event loop")
