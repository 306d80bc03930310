import json
import logging
import os
import typing

import azure.functions as func

def main(ctx: func.EntityContext):
    return json.dumps({'entity': ctx.body})
