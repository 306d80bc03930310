"""A v1 function whose dependencies are only in .python_packages."""
import json
import ssl
import sys

import azure.functions as func
import greeting


def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(json.dumps({
        "greeting": greeting.hello(req.params.get("name", "x")),
        "version": "%d.%d" % sys.version_info[:2],
        "azure_functions": func.__file__,
        "ssl": ssl.OPENSSL_VERSION,
        "path": sys.path,
        "executable": sys.executable,
    }))
