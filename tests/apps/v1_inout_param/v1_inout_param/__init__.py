import azure.functions as func


def main(req: func.HttpRequest, doc: str) -> str:
    return "inout"
