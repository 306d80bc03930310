import azure.functions as func


def main(req: func.HttpRequest, ret: func.Out[func.HttpRequest]) -> None:
    pass
