# Driven by tests/host/test_invocations.py through the host simulator.
import logging

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    name = req.params.get("name", "world")
    logging.info("v1 hello %s", name)
    if name == "boom":
        raise KeyError(name)
    return func.HttpResponse(f"Hello v1, {name}", status_code=200)
