import azure.functions as func


def main(req: func.HttpRequest, context: int) -> str:
    return "context is not an int"
