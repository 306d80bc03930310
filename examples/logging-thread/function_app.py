import logging
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)


@app.route(route="work")
def work(req: func.HttpRequest, context: func.Context) -> func.HttpResponse:
    def background():
        # Logs from a thread are attributed to the invocation through
        # context.thread_local_storage.invocation_id.
        context.thread_local_storage.invocation_id = context.invocation_id
        logging.info("hello from a background thread")

    t = threading.Thread(target=background)
    t.start()
    t.join()
    return func.HttpResponse("done")
