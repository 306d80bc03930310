import azure.functions as func

app = func.FunctionApp()


@app.queue_output(arg_name="msg", queue_name="out", connection="AzureWebJobsStorage")
def orphan(msg: func.Out[str]) -> None:
    msg.set("no trigger")
