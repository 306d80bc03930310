import azure.functions as func

from http_blueprint import bp

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
app.register_functions(bp)


@app.route(route="main")
def main_route(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse("from the app")
