import azure.functions as func


def main(req: func.HttpRequest, foo: str) -> str:
    return "foo should be Out[str]"
