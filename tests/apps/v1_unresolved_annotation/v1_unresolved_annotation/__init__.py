import azure.functions as func


def main(req: "func.HttpRequest", item: "NoSuchModel") -> str:
    return "never"
