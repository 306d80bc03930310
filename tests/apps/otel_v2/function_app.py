# Driven by tests/host/test_telemetry.py (through the worker) and
# tests/runner/test_runner_telemetry.py (through azfunc start): each function
# creates a span and reports how it relates to the invocation's trace context.
import asyncio
import json

import azure.functions as func
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import \
    InMemorySpanExporter

exporter = InMemorySpanExporter()
provider = TracerProvider()
provider.add_span_processor(SimpleSpanProcessor(exporter))
trace.set_tracer_provider(provider)
tracer = trace.get_tracer("otel_v2")

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


def report(span, context):
    done = {s.context.span_id: s for s in exporter.get_finished_spans()}
    s = done[span.get_span_context().span_id]
    return func.HttpResponse(json.dumps({
        "trace_id": format(s.context.trace_id, "032x"),
        "span_id": format(s.context.span_id, "016x"),
        "parent_span_id": format(s.parent.span_id, "016x") if s.parent else None,
        "trace_parent": context.trace_context.trace_parent,
        "trace_state": context.trace_context.trace_state,
    }), mimetype="application/json")


@app.route(route="span")
def span(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    with tracer.start_as_current_span("inside") as s:
        pass
    return report(s, context)


@app.route(route="aspan")
async def aspan(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    with tracer.start_as_current_span("inside-async") as s:
        await asyncio.sleep(0)
    return report(s, context)
