import azure.functions as func

SETTINGS = {}
TIMEOUT = SETTINGS["timeout"]


def main(req: func.HttpRequest) -> str:
    return "never"
