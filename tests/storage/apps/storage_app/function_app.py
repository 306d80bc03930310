"""The storage app of tests/storage: queue and blob triggers, queue/blob/table bindings
and an input that no local run can supply."""
import json

import azure.functions as func

app = func.FunctionApp()


@app.queue_trigger(arg_name="msg", queue_name="orders", connection="Storage")
@app.blob_output(arg_name="out", path="results/{id}.txt", connection="Storage")
def on_order(msg: func.QueueMessage, out: func.Out[str]) -> None:
    order = msg.get_json()
    out.set(f"order {order['id']} item {order['item']} dequeue {msg.dequeue_count} "
            f"inserted {msg.insertion_time.year}")


@app.queue_trigger(arg_name="msg", queue_name="fails", connection="Storage")
def always_fails(msg: func.QueueMessage) -> None:
    raise RuntimeError(f"cannot handle {msg.get_body().decode()} "
                       f"(dequeue {msg.dequeue_count})")


@app.blob_trigger(arg_name="blob", path="uploads/{name}.txt", connection="Storage")
@app.queue_output(arg_name="seen", queue_name="seen", connection="Storage")
def on_upload(blob: func.InputStream, seen: func.Out[str]) -> None:
    seen.set(f"{blob.name}|{blob.length}|{blob.read().decode()}")


@app.route(route="rows/{pk}/{rk}", methods=["PUT"], auth_level=func.AuthLevel.ANONYMOUS)
@app.table_output(arg_name="row", table_name="people", connection="Storage")
def put_row(req: func.HttpRequest, row: func.Out[str]) -> str:
    row.set(json.dumps({"PartitionKey": req.route_params["pk"],
                        "RowKey": req.route_params["rk"], "Name": req.get_body().decode()}))
    return "stored"


@app.route(route="rows/{pk}/{rk}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.table_input(arg_name="row", table_name="people", partition_key="{pk}", row_key="{rk}",
                 connection="Storage")
def get_row(req: func.HttpRequest, row: str) -> str:
    return json.loads(row)["Name"] if row else "none"


@app.route(route="rows/{pk}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.table_input(arg_name="rows", table_name="people", partition_key="{pk}", take=5,
                 connection="Storage")
def list_rows(req: func.HttpRequest, rows: str) -> str:
    return ",".join(sorted(r["Name"] for r in json.loads(rows)))


@app.route(route="notes/{name}", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
@app.blob_input(arg_name="note", path="results/{name}.txt", connection="Storage")
def read_note(req: func.HttpRequest, note: str) -> str:
    return note or "missing"


@app.route(route="docs", auth_level=func.AuthLevel.ANONYMOUS)
@app.cosmos_db_input(arg_name="documents", database_name="db", container_name="items",
                     connection="CosmosConnection")
def docs(req: func.HttpRequest, documents: func.DocumentList) -> str:
    return str(len(documents))


@app.queue_trigger(arg_name="msg", queue_name="slow", connection="Storage")
def slow(msg: func.QueueMessage) -> None:
    import logging
    import time
    logging.info("slow start %s dequeue %d", msg.get_body().decode(), msg.dequeue_count)
    time.sleep(9)


@app.blob_trigger(arg_name="blob", path="broken/{name}.txt", connection="Storage")
def on_broken(blob: func.InputStream) -> None:
    raise ValueError(f"cannot read {blob.name}")


@app.route(route="badrow", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
@app.table_output(arg_name="row", table_name="people", connection="Storage")
def bad_row(req: func.HttpRequest, row: func.Out[str]) -> str:
    row.set("not an entity")
    return "never seen"
