import json
import logging
import os
import typing

import azure.functions as func

def main(blob: func.InputStream, text: str, out: func.Out[bytes]) -> None:
    out.set(json.dumps({'name': blob.name, 'length': blob.length, 'content': blob.read().decode(),
                        'text': text}, sort_keys=True).encode())
