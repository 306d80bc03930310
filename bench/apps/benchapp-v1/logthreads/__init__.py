"""bench function logthreads (v1 model; same behaviour as in benchapp)."""
import logging
import threading

import azure.functions as func


def main(req: func.HttpRequest) -> func.HttpResponse:
    ts = [threading.Thread(target=logging.info, args=('from thread %d', i))
          for i in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return func.HttpResponse(b'hello')
