import json
import logging
import os
import typing

import azure.functions as func

async def main(req: str, context: func.Context) -> str:
    return json.dumps({'name': context.function_name, 'id': context.invocation_id,
                       'dir': os.path.basename(context.function_directory)})
