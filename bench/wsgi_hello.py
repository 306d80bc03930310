"""The examples/hello function (HttpHello/__init__.py, unchanged) served as a WSGI app,
for the uWSGI side of bench/runner-vs-uwsgi.sh: each request becomes the same
azure.functions.HttpRequest the function gets under `azfunc start`."""

import importlib.util
import sys
from pathlib import Path
from urllib.parse import parse_qsl

import azure.functions as func

_init = Path(__file__).resolve().parents[1] / "examples" / "hello" / "HttpHello" / "__init__.py"
_spec = importlib.util.spec_from_file_location("HttpHello", _init)
_mod = importlib.util.module_from_spec(_spec)
sys.modules["HttpHello"] = _mod
_spec.loader.exec_module(_mod)
main = _mod.main


def application(environ, start_response):
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    headers = {k[5:].replace("_", "-").lower(): v for k, v in environ.items()
               if k.startswith("HTTP_")}
    query = dict((k, v) for k, v in parse_qsl(environ.get("QUERY_STRING", "")) if v)
    req = func.HttpRequest(method=environ["REQUEST_METHOD"],
                           url="http://%s%s" % (environ.get("HTTP_HOST", ""),
                                                environ.get("PATH_INFO", "")),
                           headers=headers, params=query, route_params={}, body=body)
    resp = main(req)
    start_response("%d %s" % (resp.status_code, "OK" if resp.status_code == 200 else ""),
                   [(k, v) for k, v in resp.headers.items()]
                   + [("Content-Type", resp.mimetype + "; charset=" + resp.charset)])
    return [resp.get_body()]
