import json
import logging
import os
import typing

import azure.functions as func

def main(msg: func.QueueMessage) -> str:
    return json.dumps({'id': msg.id, 'body': msg.get_body().decode(),
                       'dequeue_count': msg.dequeue_count}, sort_keys=True)
