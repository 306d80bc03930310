import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello", methods=["GET", "POST"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name") or "world"
    return func.HttpResponse(f"Hello, {name}!")


@app.route(route="products/{id:int}/{category?}", methods=["GET"])
def product(req: func.HttpRequest) -> func.HttpResponse:
    rp = req.route_params
    return func.HttpResponse(f"product {rp.get('id')} in {rp.get('category') or 'all'}")


@app.route(route="files/{*path}")
def files(req: func.HttpRequest) -> str:
    # A bare string return becomes a 200 text/plain response.
    return f"file {req.route_params.get('path')}"


@app.route(route="echo", methods=["POST"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse(req.get_body(), status_code=201,
                             headers={"X-Echo-Header": req.headers.get("x-test", "")},
                             mimetype="application/octet-stream")
    resp.headers["Set-Cookie"] = "session=abc; Path=/; HttpOnly"
    return resp
