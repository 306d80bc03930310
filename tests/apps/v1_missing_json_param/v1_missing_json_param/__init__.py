import azure.functions as func


def main(req: func.HttpRequest, spam: str) -> str:
    return "extra parameter"
