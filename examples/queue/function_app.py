"""Queue example: an HTTP function puts orders on a queue; a queue-triggered function
processes each one, writes a receipt blob and notifies a second queue. Runs on Azurite,
which `azfunc start` starts for UseDevelopmentStorage=true.

    azfunc start examples/queue
    curl -X POST http://localhost:7071/api/orders -d '{"id": "42", "item": "tea"}'
    # then the receipt, through the blob input of the third function:
    curl http://localhost:7071/api/receipts/42
"""
import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="orders", methods=["POST"])
@app.queue_output(arg_name="orders", queue_name="orders", connection="AzureWebJobsStorage")
def place_order(req: func.HttpRequest, orders: func.Out[str]) -> func.HttpResponse:
    order = req.get_json()
    orders.set(json.dumps(order))
    return func.HttpResponse(f"order {order['id']} queued", status_code=202)


@app.queue_trigger(arg_name="msg", queue_name="orders", connection="AzureWebJobsStorage")
@app.blob_output(arg_name="receipt", path="receipts/{id}.json",
                 connection="AzureWebJobsStorage")
@app.queue_output(arg_name="notify", queue_name="notifications",
                  connection="AzureWebJobsStorage")
def process_order(msg: func.QueueMessage, receipt: func.Out[str],
                  notify: func.Out[str]) -> None:
    order = msg.get_json()
    logging.info("order %s (message %s, dequeue count %d)", order["id"], msg.id,
                 msg.dequeue_count)
    receipt.set(json.dumps({"order": order, "status": "processed"}))
    notify.set(f"order {order['id']} processed")


@app.route(route="receipts/{id}", methods=["GET"])
@app.blob_input(arg_name="receipt", path="receipts/{id}.json",
                connection="AzureWebJobsStorage")
def get_receipt(req: func.HttpRequest, receipt: str) -> func.HttpResponse:
    if receipt is None:
        return func.HttpResponse("no receipt yet", status_code=404)
    return func.HttpResponse(receipt, mimetype="application/json")
