import os

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="setting/{name}")
def setting(req: func.HttpRequest) -> func.HttpResponse:
    # Values of local.settings.json are environment variables of the app.
    value = os.environ.get(req.route_params["name"])
    if value is None:
        return func.HttpResponse("not set", status_code=404)
    return func.HttpResponse(value)
