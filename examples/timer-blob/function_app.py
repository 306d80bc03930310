"""Timer + blob input example: every 10 seconds a timer function reads its settings
from a blob (None until one exists) and logs them; an HTTP function writes that blob.
Runs on Azurite, which `azfunc start` starts for UseDevelopmentStorage=true.

    azfunc start examples/timer-blob
    curl -X PUT http://localhost:7071/api/config -d '{"greeting": "hello"}'
    # the next ticks log: settings: {"greeting": "hello"}
"""
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.timer_trigger(arg_name="timer", schedule="*/10 * * * * *", run_on_startup=False)
@app.blob_input(arg_name="settings", path="config/settings.json",
                connection="AzureWebJobsStorage")
def tick(timer: func.TimerRequest, settings: str) -> None:
    logging.info("settings: %s", settings if settings is not None else "(none yet)")


@app.route(route="config", methods=["PUT"])
@app.blob_output(arg_name="settings", path="config/settings.json",
                 connection="AzureWebJobsStorage")
def put_config(req: func.HttpRequest, settings: func.Out[str]) -> str:
    settings.set(req.get_body().decode())
    return "stored"
