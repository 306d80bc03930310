import json
import logging
import os
import typing

import azure.functions as func

def main(req: func.HttpRequest, rows: func.SqlRowList) -> func.HttpResponse:
    return func.HttpResponse(json.dumps([json.loads(r.to_json()) for r in rows]))
