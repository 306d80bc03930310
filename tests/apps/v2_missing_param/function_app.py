import azure.functions as func

app = func.FunctionApp()


@app.route(route="noparam")
def noparam() -> str:
    return "where is req?"
