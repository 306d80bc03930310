import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    cookie = req.headers.get("cookie", "")
    return func.HttpResponse(f"pong {req.route_params['n']} {req.params.get('q', '')} {cookie}",
                             headers={"X-Method": req.method})
