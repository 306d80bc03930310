import azure.functions as func


def main(req: func.HttpRequest) -> int:
    return 1
