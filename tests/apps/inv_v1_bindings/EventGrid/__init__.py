import json
import logging
import os
import typing

import azure.functions as func

def main(event: func.EventGridEvent, out: func.Out[str]) -> None:
    out.set(json.dumps({'id': event.id, 'data': event.get_json(), 'type': event.event_type}))
