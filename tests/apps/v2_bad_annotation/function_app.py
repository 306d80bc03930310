import azure.functions as func

app = func.FunctionApp()


@app.route(route="count")
def count(req: int) -> str:
    return "req is a request, not an int"
