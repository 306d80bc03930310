import azure.functions as func

bp = func.Blueprint()


@bp.function_name("NightlyReport")
@bp.schedule(schedule="0 0 2 * * *", arg_name="timer", use_monitor=True)
def nightly(timer: func.TimerRequest, context: func.Context) -> None:
    pass
