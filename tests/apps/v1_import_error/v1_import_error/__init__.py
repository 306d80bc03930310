import azure.functions as func
from os import no_such_name


def main(req: func.HttpRequest) -> str:
    return "never"
