import json

import azure.functions as func

from fakeblob import FakeBlobClient

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.blob_trigger(arg_name="client", path="c/{name}", connection="Conn")
@app.blob_input(arg_name="text", path="c/t.txt", connection="Conn")
@app.queue_output(arg_name="out", queue_name="q", connection="Conn")
def sdk(client: FakeBlobClient, text: str, out: func.Out[str]) -> None:
    out.set(json.dumps({'version': client.version, 'source': client.source,
                        'content_type': client.content_type, 'container': client.container,
                        'blob': client.blob, 'text': text}, sort_keys=True))


@app.blob_trigger(arg_name="blob", path="c/{name}", connection="Conn")
def plain(blob: func.InputStream) -> None:
    pass
