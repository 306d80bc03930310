"""azfunc start's Core Tools habits (tests/runner/test_habits.py): two HTTP functions,
one with a route template the host refuses, and a timer."""
import azure.functions as func

app = func.FunctionApp()


@app.route(route="good")
def good(req: func.HttpRequest) -> str:
    return "good"


@app.route(route="other")
def other(req: func.HttpRequest) -> str:
    return "other"


@app.route(route="bad/{id:nosuch}")
def bad(req: func.HttpRequest) -> str:
    return "never"


@app.timer_trigger(schedule="0 */5 * * * *", arg_name="t")
def tick(t: func.TimerRequest) -> None:
    pass
