import json
import logging
import os
import typing

import azure.functions as func

def main(events: typing.List[func.EventHubEvent], out: func.Out[str]) -> None:
    out.set(json.dumps([[e.get_body().decode(), e.sequence_number] for e in events]))
