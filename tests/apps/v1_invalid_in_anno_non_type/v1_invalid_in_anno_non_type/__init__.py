import azure.functions as func


def main(req: 123) -> func.HttpResponse:
    return func.HttpResponse("never")
