import json
import logging
import os
import typing

import azure.functions as func

def main(event: func.EventHubEvent, out: func.Out[str]) -> None:
    out.set(json.dumps({'body': event.get_body().decode(), 'seq': event.sequence_number}))
