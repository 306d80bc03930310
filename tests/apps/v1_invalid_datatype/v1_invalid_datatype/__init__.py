import azure.functions as func


def main(req: func.HttpResponse) -> str:
    return "never"
