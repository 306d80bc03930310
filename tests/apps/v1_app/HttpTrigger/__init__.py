import azure.functions as func

import __app__.shared_code.util as absolute_util
from . import helpers
from ..shared_code import counter, util

counter.imported(__name__)
assert __name__ == "__app__.HttpTrigger", __name__
assert absolute_util is util


def main(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    return func.HttpResponse(helpers.shout(util.greet(req.params.get("name", "you"))))


def alt(req: func.HttpRequest) -> str:
    return "the same module, another entry point"
