import azure.functions as func

from ..shared.apps import wsgi


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.WsgiMiddleware(wsgi).handle(req, context)
