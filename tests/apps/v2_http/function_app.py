import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="hello", methods=["GET", "POST"])
def hello(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(f"hello {req.params.get('name', 'world')}")


@app.function_name(name="DefaultRoute")
@app.route()
def default_route(req: func.HttpRequest, context: func.Context) -> str:
    return context.function_name


@app.route(route="items/{id:int}", methods=[func.HttpMethod.PUT], auth_level=func.AuthLevel.FUNCTION)
@app.queue_output(arg_name="msg", queue_name="items", connection="AzureWebJobsStorage")
async def put_item(req: func.HttpRequest, msg: func.Out[str]) -> func.HttpResponse:
    msg.set(req.get_body().decode())
    return func.HttpResponse(status_code=202)


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="timer", run_on_startup=False)
@app.retry(strategy="fixed_delay", max_retry_count="3", delay_interval="00:00:10")
def tick(timer: func.TimerRequest) -> None:
    pass


@app.queue_trigger(arg_name="job", queue_name="work", connection="AzureWebJobsStorage")
@app.retry(strategy="exponential_backoff", max_retry_count="-1",
           minimum_interval="00:00:02", maximum_interval="00:10:00")
def work(job: func.QueueMessage) -> None:
    pass
