import azure.functions as func

app = func.FunctionApp(http_auth_level="ANONYMOUS")


@app.route(route="custom")
def custom(req: func.HttpRequest) -> str:
    return "indexed from main_app.py"
