import azure.functions as func


async def tiny_asgi(scope, receive, send):
    """A complete ASGI application: every request gets 'asgi'."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"asgi"})


app = func.AsgiFunctionApp(app=tiny_asgi, http_auth_level=func.AuthLevel.ANONYMOUS)
