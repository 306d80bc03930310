import json
import logging
import os
import typing

import azure.functions as func

def main(req: func.HttpRequest) -> func.HttpResponse:
    logging.info('echo %s', req.route_params.get('id'))
    seen = {'method': req.method, 'url': req.url, 'x-one': req.headers.get('X-One'),
            'params': dict(req.params), 'route_params': dict(req.route_params),
            'body': req.get_body().decode()}
    resp = func.HttpResponse(json.dumps(seen, sort_keys=True), status_code=202,
                             headers={'X-Out': 'o'}, mimetype='application/json')
    resp.headers.add('Set-Cookie', 'sid=abc; Path=/; HttpOnly')
    return resp
