import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.function_name("same")
@app.route(route="a")
def first(req: func.HttpRequest) -> str:
    return "a"


@app.function_name("same")
@app.route(route="b")
def second(req: func.HttpRequest) -> str:
    return "b"
