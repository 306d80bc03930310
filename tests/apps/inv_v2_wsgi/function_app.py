import json

import azure.functions as func


def wsgi(environ, start_response):
    body = environ['wsgi.input'].read(int(environ.get('CONTENT_LENGTH') or 0))
    payload = json.dumps({'method': environ['REQUEST_METHOD'], 'path': environ['PATH_INFO'],
                          'query': environ['QUERY_STRING'], 'body': body.decode(),
                          'header': environ.get('HTTP_X_ONE')}, sort_keys=True).encode()
    start_response('200 OK', [('Content-Type', 'application/json'), ('X-Wsgi', '1')])
    return [payload]


app = func.WsgiFunctionApp(app=wsgi,
                           http_auth_level=func.AuthLevel.ANONYMOUS)
