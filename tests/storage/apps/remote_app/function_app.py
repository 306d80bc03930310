"""Triggers with no local service, invoked through POST /admin/functions/<name>."""
import logging
from typing import List

import azure.functions as func

app = func.FunctionApp()


@app.event_hub_message_trigger(arg_name="event", event_hub_name="hub",
                               connection="EventHubConnection")
@app.event_hub_output(arg_name="out", event_hub_name="out-hub", connection="EventHubConnection")
def on_event(event: func.EventHubEvent, out: func.Out[str]) -> None:
    logging.info("event %s seq %s", event.get_body().decode(), event.sequence_number)
    out.set("forwarded " + event.get_body().decode())


@app.event_hub_message_trigger(arg_name="events", event_hub_name="hub2",
                               connection="EventHubConnection",
                               cardinality=func.Cardinality.MANY)
def on_events(events: List[func.EventHubEvent]) -> None:
    logging.info("events %s", [e.get_body().decode() for e in events])


@app.service_bus_queue_trigger(arg_name="msg", queue_name="sb",
                               connection="ServiceBusConnection")
def on_message(msg: func.ServiceBusMessage) -> None:
    logging.info("message %s delivery %s id-length %d", msg.get_body().decode(),
                 msg.delivery_count, len(msg.message_id))


@app.event_grid_trigger(arg_name="event")
def on_grid(event: func.EventGridEvent) -> None:
    logging.info("grid %s %s", event.event_type, event.get_json())


@app.cosmos_db_trigger(arg_name="docs", database_name="db", container_name="items",
                       connection="CosmosConnection")
def on_docs(docs: func.DocumentList) -> None:
    logging.info("docs %d first %s", len(docs), docs[0]["id"])
