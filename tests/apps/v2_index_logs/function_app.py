"""Logs while the app is indexed: the app's own logger at import, and the
library's root-logger warning that the auth level does not apply to an app
without HTTP functions. Both must reach the host (see test_apps.py)."""
import logging

import azure.functions as func

app = func.FunctionApp()
logging.getLogger("index_logs.app").info("imported while indexing")


@app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
def on_queue(msg: func.QueueMessage) -> None:
    pass
