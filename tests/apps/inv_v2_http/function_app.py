import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="echo/{id}", methods=["POST", "GET"])
def echo(req: func.HttpRequest) -> func.HttpResponse:
    logging.info('echo %s', req.route_params.get('id'))
    seen = {
        'method': req.method,
        'url': req.url,
        'headers': {k: req.headers.get(k) for k in ('x-one', 'X-ONE', 'content-type')},
        'params': dict(req.params),
        'route_params': dict(req.route_params),
        'body': req.get_body().decode(),
        'json': req.get_json() if req.get_body() else None,
    }
    return func.HttpResponse(json.dumps(seen, sort_keys=True), status_code=201,
                             mimetype='application/json')


@app.route(route="text")
def text(req: func.HttpRequest) -> str:
    return 'plain ' + req.params.get('name', '')


@app.route(route="cookies")
def cookies(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse('c', headers={'X-Custom': 'v'}, charset='latin-1')
    resp.headers.add('Set-Cookie', 'a=1; Domain=example.com; Path=/p; Secure; HttpOnly; '
                     'SameSite=Strict; Max-Age=60')
    resp.headers.add('Set-Cookie', 'b=2; Expires=Wed, 21 Oct 2015 07:28:00 GMT; SameSite=None')
    resp.headers.add('Set-Cookie', 'c=3; SameSite=Lax')
    return resp


@app.route(route="empty")
def empty(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(status_code=204)


@app.route(route="bytes")
def raw(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(b'\x01\x02', mimetype='application/octet-stream')


@app.route(route="badcookie")
def badcookie(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse('x')
    resp.headers.add('Set-Cookie', 'a=1; Max-Age=soon')
    return resp


@app.route(route="badexpires")
def badexpires(req: func.HttpRequest) -> func.HttpResponse:
    resp = func.HttpResponse('x')
    resp.headers.add('Set-Cookie', 'a=1; Expires=garbage')
    return resp


@app.route(route="none")
def none(req: func.HttpRequest) -> func.HttpResponse:
    return None


@app.route(route="badtype")
def badtype(req: func.HttpRequest) -> func.HttpResponse:
    return 42
