import azure.functions as func


def main(req: func.HttpRequest) -> 123:
    return "never"
