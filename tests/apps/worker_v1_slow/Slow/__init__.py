# Driven by tests/host/test_invocations.py: the import blocks until the test lets it go,
# so the worker must keep answering the host while a load runs.
import os
import time

import azure.functions as func

while not os.path.exists(os.environ["AZF_WORKER_TEST_MARKER"]):
    time.sleep(0.02)


def main(req: func.HttpRequest) -> str:
    return "loaded"
