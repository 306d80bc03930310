import json

import azure.functions as func

state = {'startups': 0}


async def asgi(scope, receive, send):
    """A raw ASGI app with lifespan: the startup must run once, on the worker's loop."""
    if scope['type'] == 'lifespan':
        while True:
            message = await receive()
            if message['type'] == 'lifespan.startup':
                state['startups'] += 1
                await send({'type': 'lifespan.startup.complete'})
            elif message['type'] == 'lifespan.shutdown':
                await send({'type': 'lifespan.shutdown.complete'})
                return
    body = b''
    while True:
        message = await receive()
        body += message.get('body', b'')
        if not message.get('more_body'):
            break
    payload = json.dumps({'method': scope['method'], 'path': scope['path'],
                          'query': scope['query_string'].decode(), 'body': body.decode(),
                          'startups': state['startups'],
                          'function': scope.get('azure_functions.function_name')},
                         sort_keys=True).encode()
    await send({'type': 'http.response.start', 'status': 203,
                'headers': [(b'content-type', b'application/json'), (b'x-asgi', b'1')]})
    await send({'type': 'http.response.body', 'body': payload})


app = func.AsgiFunctionApp(app=asgi, http_auth_level=func.AuthLevel.ANONYMOUS)
