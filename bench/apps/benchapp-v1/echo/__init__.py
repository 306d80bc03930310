"""bench function echo (v1 model; same behaviour as in benchapp)."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(req.get_body())
