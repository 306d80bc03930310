import azure.functions as func


def main(req: func.HttpRequest, foo: func.Out[str]) -> str:
    return "foo is an input"
