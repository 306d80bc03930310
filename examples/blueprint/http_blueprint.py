import azure.functions as func

bp = func.Blueprint()


@bp.route(route="blueprint/{name}", auth_level=func.AuthLevel.ANONYMOUS)
def from_blueprint(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"Hello, {req.route_params['name']}, from a blueprint!")
