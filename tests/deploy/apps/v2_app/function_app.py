"""A v2 app whose dependencies are only in .python_packages."""
import json
import ssl
import sys
import urllib.request

import azure.functions as func
import greeting
from azure_functions_worker import logging as worker_logging  # seen in real apps

app = func.FunctionApp()


@app.route(route="probe", auth_level=func.AuthLevel.ANONYMOUS)
def probe(req: func.HttpRequest) -> func.HttpResponse:
    # An HTTPS-capable stack: the interpreter's own ssl module and urllib's handler.
    https = urllib.request.HTTPSHandler(context=ssl.create_default_context())
    return func.HttpResponse(json.dumps({
        "greeting": greeting.hello(req.params.get("name", "x")),
        "version": "%d.%d" % sys.version_info[:2],
        "azure_functions": func.__file__,
        "ssl": ssl.OPENSSL_VERSION,
        "https": type(https).__name__,
        "path": sys.path,
        "executable": sys.executable,
        "base_prefix": sys.base_prefix,
        "full_version": sys.version.split()[0],
        "worker_logger": worker_logging.logger.name,
    }))
