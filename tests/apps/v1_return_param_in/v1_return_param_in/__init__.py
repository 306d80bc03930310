import azure.functions as func


def main(req: func.HttpRequest) -> str:
    return "the return binding is an input"
