import azure.functions as func


def main(req: func.HttpRequest, foo: func.Out) -> str:
    return "Out needs a type argument"
