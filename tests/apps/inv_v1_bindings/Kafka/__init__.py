import json
import logging
import os
import typing

import azure.functions as func

def main(event: func.KafkaEvent, out: func.Out[str]) -> None:
    out.set(json.dumps({'body': event.get_body().decode(), 'offset': event.offset}))
