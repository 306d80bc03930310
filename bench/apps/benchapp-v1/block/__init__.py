"""bench function block (v1 model; same behaviour as in benchapp)."""
import threading

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    threading.Event().wait()
    return func.HttpResponse(b'hello')
