import json
import logging
import os
import typing

import azure.functions as func

def main(msg: func.ServiceBusMessage, out: func.Out[str]) -> None:
    out.set(json.dumps({'body': msg.get_body().decode(), 'id': msg.message_id}))
