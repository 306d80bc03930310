"""Event Hubs example, as far as it runs locally: Event Hubs has no local emulator that
azfunc start runs, so the trigger is invoked through the admin endpoint, which gives the
function the event and the system properties the host would; the Event Hub output is
printed in the invocation's log lines instead of being sent. The Cosmos DB input of the
second function cannot be supplied locally: its invocation fails before the call with a
message that names the binding.

    azfunc start examples/eventhub
    curl -X POST http://localhost:7071/admin/functions/forward \
         -H 'Content-Type: application/json' -d '{"input": "{\"temperature\": 21}"}'
    curl http://localhost:7071/api/readings    # 500: the cosmosDB input cannot be supplied
"""
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.event_hub_message_trigger(arg_name="event", event_hub_name="readings",
                               connection="EventHubConnection")
@app.event_hub_output(arg_name="alerts", event_hub_name="alerts",
                      connection="EventHubConnection")
def forward(event: func.EventHubEvent, alerts: func.Out[str]) -> None:
    reading = event.get_body().decode()
    logging.info("reading %s (sequence number %s, enqueued %s)", reading,
                 event.sequence_number, event.enqueued_time)
    alerts.set(reading)


@app.route(route="readings")
@app.cosmos_db_input(arg_name="documents", database_name="telemetry",
                     container_name="readings", connection="CosmosConnection")
def readings(req: func.HttpRequest, documents: func.DocumentList) -> str:
    return f"{len(documents)} readings"
