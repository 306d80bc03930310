import json
import logging
import os
import typing

import azure.functions as func

def main(req: func.HttpRequest) -> str:
    return 'hi ' + req.params.get('name', '')
