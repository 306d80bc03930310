"""SDK-type blob bindings (azurefunctions-extensions-bindings-blob): the function gets a
BlobClient built from the reference the runner sends, not the content."""
import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="sdk/{name}")
@app.blob_input(arg_name="client", path="docs/{name}.txt", connection="Storage")
def sdk_read(req: func.HttpRequest, client: blob.BlobClient) -> str:
    return f"{client.blob_name}: {client.download_blob(encoding='utf-8').readall()}"


@app.blob_trigger(arg_name="client", path="sdk-in/{name}.txt", connection="Storage")
def sdk_trigger(client: blob.BlobClient) -> None:
    logging.info("sdk blob %s says %s", client.blob_name,
                 client.download_blob(encoding="utf-8").readall())
