import json
import logging
import os
import typing

import azure.functions as func

def main(ctx: func.OrchestrationContext):
    return json.dumps({'body': ctx.body})
