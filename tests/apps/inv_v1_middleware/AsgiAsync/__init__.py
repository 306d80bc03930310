import azure.functions as func

from ..shared.apps import asgi

middleware = func.AsgiMiddleware(asgi)


async def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return await middleware.handle_async(req, context)
