import azure.functions as func

from ..shared_code import counter

counter.imported(__name__)
assert __name__ == "__app__.TimerCustomEntry.main", __name__


def run(timer: func.TimerRequest, msg: func.Out[str], config: str) -> None:
    msg.set(config)
