import asyncio


def wsgi(environ, start_response):
    start_response('201 Created', [('Content-Type', 'text/plain')])
    return [('wsgi ' + environ['PATH_INFO']).encode()]


async def asgi(scope, receive, send):
    if scope['type'] != 'http':
        return
    try:
        asyncio.get_running_loop()
        where = 'loop'
    except RuntimeError:
        where = 'none'
    await send({'type': 'http.response.start', 'status': 200,
                'headers': [(b'content-type', b'text/plain')]})
    await send({'type': 'http.response.body', 'body': ('asgi ' + scope['path'] + ' ' + where).encode()})
