"""Logs while the app is indexed: the app's own logger at import, and the
library's root-logger warning that the auth level does not apply to an app
without HTTP functions. The official worker sends both as User RpcLogs
without an invocation id."""
import logging

import azure.functions as func

app = func.FunctionApp()
logging.getLogger("index_logs.app").info("imported while indexing")


@app.queue_trigger(arg_name="msg", queue_name="q", connection="AzureWebJobsStorage")
def on_queue(msg: func.QueueMessage) -> None:
    pass
