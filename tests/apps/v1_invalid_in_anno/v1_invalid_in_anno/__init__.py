import azure.functions as func


def main(req: func.HttpResponse) -> func.HttpResponse:
    return req
