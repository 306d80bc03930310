import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="greet/{name}", methods=["GET", "POST"])
@app.queue_output(arg_name="audit", queue_name="greetings", connection="AzureWebJobsStorage")
def greet(req: func.HttpRequest, audit: func.Out[str]) -> func.HttpResponse:
    name = req.route_params["name"]
    style = req.params.get("style", "plain")
    logging.info("greeting %s", name)
    audit.set(json.dumps({"name": name, "style": style}))
    text = f"Hello, {name}!" if style == "plain" else f"HELLO, {name.upper()}!"
    return func.HttpResponse(text, headers={"x-style": style})


@app.route(route="sum", methods=["POST"])
def total(req: func.HttpRequest) -> func.HttpResponse:
    try:
        numbers = req.get_json()["numbers"]
    except (ValueError, KeyError):
        return func.HttpResponse("send {\"numbers\": [...]}", status_code=400)
    return func.HttpResponse(json.dumps({"sum": sum(numbers)}), mimetype="application/json")
