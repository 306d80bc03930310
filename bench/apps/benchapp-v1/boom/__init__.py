"""bench function boom (v1 model; same behaviour as in benchapp)."""

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    raise ValueError('boom')
