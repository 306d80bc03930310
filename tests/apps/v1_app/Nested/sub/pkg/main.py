import azure.functions as func

from . import tools
from ....shared_code.util import greet

assert __name__ == "__app__.Nested.sub.pkg.main", __name__


async def main(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(tools.wrap(greet("nested")))
