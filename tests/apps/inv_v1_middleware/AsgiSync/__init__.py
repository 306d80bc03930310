import azure.functions as func

from ..shared.apps import asgi


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    # The deprecated sync path runs asyncio.run: only possible off the loop.
    return func.AsgiMiddleware(asgi).handle(req, context)
