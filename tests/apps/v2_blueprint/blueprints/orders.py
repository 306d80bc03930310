import azure.functions as func

from .common import normalise

bp = func.Blueprint()


@bp.route(route="orders/{id}", methods=["GET"])
def get_order(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(normalise(req.route_params["id"]))


@bp.queue_trigger(arg_name="order", queue_name="orders", connection="AzureWebJobsStorage")
@bp.blob_output(arg_name="receipt", path="receipts/{id}.txt", connection="AzureWebJobsStorage")
def store_order(order: func.QueueMessage, receipt: func.Out[str]) -> None:
    receipt.set(normalise(order.get_body().decode()))
