import azure.functions as func

app = func.FunctionApp()


@app.route(route="ret")
def ret(req: func.HttpRequest) -> func.Out[func.HttpResponse]:
    return None
