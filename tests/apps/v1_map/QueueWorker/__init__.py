import logging

import azure.functions as func


def main(item: func.QueueMessage, result: func.Out[str], context: func.Context) -> bytes:
    logging.info("processing %s", item.id)
    result.set(item.get_body().decode())
    return item.get_body()
