import azure.functions as func


def main(timer: func.HttpRequest) -> None:
    pass
