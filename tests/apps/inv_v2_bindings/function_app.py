import json
import typing

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def iso(dt):
    return dt.isoformat() if dt is not None else None


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer")
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def timer(timer: func.TimerRequest, out: func.Out[str]) -> None:
    out.set(json.dumps({'past_due': timer.past_due}))


@app.queue_trigger(arg_name="msg", queue_name="q", connection="Conn")
@app.queue_output(arg_name="$return", queue_name="q2", connection="Conn")
def queue(msg: func.QueueMessage) -> str:
    return json.dumps({
        'id': msg.id, 'body': msg.get_body().decode(), 'json': msg.get_json(),
        'dequeue_count': msg.dequeue_count, 'pop_receipt': msg.pop_receipt,
        'insertion_time': iso(msg.insertion_time),
        'expiration_time': iso(msg.expiration_time),
        'next_visible': iso(msg.time_next_visible)}, sort_keys=True)


@app.queue_trigger(arg_name="msg", queue_name="q", connection="Conn")
@app.queue_output(arg_name="out", queue_name="q2", connection="Conn")
def queue_out(msg: func.QueueMessage, out: func.Out[func.QueueMessage]) -> None:
    out.set(func.QueueMessage(id='m1', body='hello'))


@app.blob_trigger(arg_name="blob", path="c/{name}", connection="Conn")
@app.blob_input(arg_name="text", path="c/other.txt", connection="Conn")
@app.blob_input(arg_name="data", path="c/other.bin", connection="Conn")
@app.blob_output(arg_name="out", path="c/out.txt", connection="Conn")
def blob(blob: func.InputStream, text: str, data: bytes, out: func.Out[str]) -> None:
    out.set(json.dumps({
        'name': blob.name, 'uri': blob.uri, 'length': blob.length,
        'content': blob.read().decode(), 'text': text, 'data': data.hex(),
        'readable': blob.readable()}, sort_keys=True))


@app.blob_trigger(arg_name="blob", path="c/{name}", connection="Conn")
@app.blob_output(arg_name="out", path="c/out.bin", connection="Conn")
def blob_bytes(blob: bytes, out: func.Out[bytes]) -> None:
    out.set(blob[::-1])


@app.cosmos_db_trigger(arg_name="docs", connection="Conn", database_name="db",
                       container_name="c")
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def cosmos(docs: func.DocumentList, out: func.Out[str]) -> None:
    out.set(json.dumps([d.to_dict() for d in docs], sort_keys=True))


@app.event_hub_message_trigger(arg_name="event", event_hub_name="hub", connection="Conn")
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def eventhub(event: func.EventHubEvent, out: func.Out[str]) -> None:
    out.set(json.dumps({
        'body': event.get_body().decode(), 'partition_key': event.partition_key,
        'sequence_number': event.sequence_number, 'offset': event.offset,
        'enqueued_time': iso(event.enqueued_time),
        'doubles': event.metadata.get('Doubles'), 'ints': event.metadata.get('Ints'),
        'number': event.metadata.get('Number')}, sort_keys=True))


@app.event_hub_message_trigger(arg_name="events", event_hub_name="hub", connection="Conn",
                               cardinality=func.Cardinality.MANY)
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def eventhub_many(events: typing.List[func.EventHubEvent], out: func.Out[str]) -> None:
    out.set(json.dumps([{'body': e.get_body().decode(), 'sequence_number': e.sequence_number,
                         'partition_key': e.partition_key} for e in events], sort_keys=True))


@app.service_bus_queue_trigger(arg_name="msg", queue_name="q", connection="Conn")
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def servicebus(msg: func.ServiceBusMessage, out: func.Out[str]) -> None:
    out.set(json.dumps({'body': msg.get_body().decode(), 'message_id': msg.message_id,
                        'user_properties': msg.user_properties,
                        'delivery_count': msg.delivery_count}, sort_keys=True))


@app.event_grid_trigger(arg_name="event")
@app.event_grid_output(arg_name="out", topic_endpoint_uri="u", topic_key_setting="k")
def eventgrid(event: func.EventGridEvent, out: func.Out[str]) -> None:
    out.set(json.dumps({'id': event.id, 'subject': event.subject, 'type': event.event_type,
                        'data': event.get_json(), 'topic': event.topic,
                        'time': iso(event.event_time)}, sort_keys=True))


@app.kafka_trigger(arg_name="event", topic="t", broker_list="b")
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def kafka(event: func.KafkaEvent, out: func.Out[str]) -> None:
    out.set(json.dumps({'body': event.get_body().decode(), 'key': event.key,
                        'offset': event.offset, 'partition': event.partition,
                        'topic': event.topic}, sort_keys=True))


@app.route(route="sql")
@app.sql_input(arg_name="rows", command_text="SELECT 1", connection_string_setting="S")
@app.sql_output(arg_name="newrows", command_text="dbo.T", connection_string_setting="S")
def sql(req: func.HttpRequest, rows: func.SqlRowList,
        newrows: func.Out[func.SqlRow]) -> str:
    newrows.set(func.SqlRow.from_dict({'id': 9}))
    return json.dumps([json.loads(r.to_json()) for r in rows], sort_keys=True)


@app.generic_trigger(arg_name="name", type="activityTrigger")
def activity(name: str) -> str:
    return 'Hello ' + name


@app.generic_trigger(arg_name="ctx", type="orchestrationTrigger")
def orchestrator(ctx: func.OrchestrationContext):
    return json.dumps({'body': ctx.body})


@app.generic_trigger(arg_name="ctx", type="entityTrigger")
def entity(ctx: func.EntityContext):
    return json.dumps({'entity': ctx.body})


def _generic(name, value):
    @app.function_name(name)
    @app.generic_trigger(arg_name="req", type="customTrigger")
    @app.generic_output_binding(arg_name="$return", type="customOut")
    def fn(req: str):
        return value
    return fn


for _name, _value in [('gen_bool', True), ('gen_bytes', b'\x01b'), ('gen_dict', {'a': 1}),
                      ('gen_double', 1.5), ('gen_int', -7), ('gen_list', [1, 'x']),
                      ('gen_none', None), ('gen_str', 'text')]:
    _generic(_name, _value)


@app.generic_trigger(arg_name="req", type="customTrigger")
def gen_echo(req):
    return json.dumps({'type': type(req).__name__, 'value': req if not isinstance(req, bytes)
                       else req.decode()})


@app.generic_trigger(arg_name="req", type="customTrigger")
def gen_unsupported(req):
    return 'never'


@app.queue_trigger(arg_name="msg", queue_name="q", connection="Conn")
def no_return_binding(msg: func.QueueMessage):
    return 'value'
