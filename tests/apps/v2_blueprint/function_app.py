import azure.functions as func

from blueprints import orders
from blueprints.reports import bp as reports_bp

app = func.FunctionApp()
app.register_functions(orders.bp)
app.register_blueprint(reports_bp)


@app.route(route="health", auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> str:
    return "ok"
