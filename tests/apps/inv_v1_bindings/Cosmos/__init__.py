import json
import logging
import os
import typing

import azure.functions as func

def main(docs: func.DocumentList, out: func.Out[str]) -> None:
    out.set(json.dumps([d['id'] for d in docs]))
