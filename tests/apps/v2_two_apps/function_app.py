import azure.functions as func

app = func.FunctionApp()
admin = func.FunctionApp()


@app.route(route="one")
def one(req: func.HttpRequest) -> str:
    return "one"
