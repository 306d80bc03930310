import azure.functions as func

bp = func.Blueprint()


@bp.route(route="lonely")
def lonely(req: func.HttpRequest) -> str:
    return "a blueprint nobody registered"
