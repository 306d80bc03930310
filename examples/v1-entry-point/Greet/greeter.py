import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("not the entry point", status_code=500)


def greet(req: func.HttpRequest) -> func.HttpResponse:
    # function.json's "entryPoint" names this function instead of main.
    name = req.params.get("name", "world")
    return func.HttpResponse(f"Greetings, {name}, from an alternative entry point!")
