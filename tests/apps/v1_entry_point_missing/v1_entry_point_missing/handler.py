import azure.functions as func


def handler(req: func.HttpRequest) -> str:
    return "named handler, function.json says run"
