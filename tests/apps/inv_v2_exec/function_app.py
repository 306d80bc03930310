import asyncio
import json
import logging
import sys
import threading

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)

ASYNC_TOTAL = 200
POOL = 10

_async = {'in_flight': 0, 'peak': 0, 'event': None}
_sync = {'active': 0, 'peak': 0, 'lock': threading.Lock(), 'full': threading.Event()}
_blocked = threading.Event()


def _trigger(name, **kw):
    return app.generic_trigger(arg_name="req", type="customTrigger", **kw)


@app.function_name("wait_async")
@_trigger("wait_async")
async def wait_async(req: str) -> str:
    # Every invocation waits until all ASYNC_TOTAL are in flight at once.
    if _async['event'] is None:
        _async['event'] = asyncio.Event()
    _async['in_flight'] += 1
    _async['peak'] = max(_async['peak'], _async['in_flight'])
    if _async['in_flight'] == ASYNC_TOTAL:
        _async['event'].set()
    await _async['event'].wait()
    return str(_async['peak'])


@app.function_name("wait_sync")
@_trigger("wait_sync")
def wait_sync(req: str) -> str:
    # The first POOL invocations must overlap; none beyond the pool size.
    with _sync['lock']:
        _sync['active'] += 1
        _sync['peak'] = max(_sync['peak'], _sync['active'])
        if _sync['active'] == POOL:
            _sync['full'].set()
    _sync['full'].wait()
    with _sync['lock']:
        _sync['active'] -= 1
    return 'ok'


@app.function_name("sync_peak")
@_trigger("sync_peak")
def sync_peak(req: str) -> str:
    return str(_sync['peak'])


@app.function_name("log_levels")
@_trigger("log_levels")
def log_levels(req: str, context: func.Context) -> None:
    logging.debug('debug %s', context.invocation_id)
    logging.info('info')
    logging.warning('warning')
    logging.error('error')
    logging.critical('critical')
    logging.getLogger('my.logger').info('named')
    logging.getLogger('azure.functions.x').info('library')
    try:
        raise ValueError('boom')
    except ValueError:
        logging.exception('caught')
    print('printed to stdout')


@app.function_name("log_thread")
@_trigger("log_thread")
def log_thread(req: str, context: func.Context) -> None:
    def work():
        context.thread_local_storage.invocation_id = context.invocation_id
        logging.info('from thread %s', threading.current_thread().name)

    def lost():
        logging.info('from a thread without an invocation')
    t = threading.Thread(target=work, name='user-thread')
    t.start()
    t.join()
    u = threading.Thread(target=lost)
    u.start()
    u.join()


@app.function_name("log_task")
@_trigger("log_task")
async def log_task(req: str) -> None:
    async def child():
        await asyncio.sleep(0)
        logging.warning('from child task')
    await asyncio.gather(child(), asyncio.create_task(child()))


@app.function_name("raises")
@_trigger("raises")
def raises(req: str) -> None:
    raise ValueError('bad input: ' + req)


@app.function_name("raises_async")
@_trigger("raises_async")
async def raises_async(req: str) -> None:
    await asyncio.sleep(0)
    raise KeyError('missing')


@app.function_name("exits")
@_trigger("exits")
def exits(req: str) -> None:
    sys.exit(3)


@app.function_name("exits_async")
@_trigger("exits_async")
async def exits_async(req: str) -> None:
    sys.exit('bye')


@app.function_name("bad_return")
@_trigger("bad_return")
@app.generic_output_binding(arg_name="$return", type="customOut")
def bad_return(req: str):
    return object()


@app.function_name("never_async")
@_trigger("never_async")
async def never_async(req: str) -> None:
    await asyncio.Event().wait()


@app.function_name("blocked_sync")
@_trigger("blocked_sync")
def blocked_sync(req: str) -> None:
    _blocked.wait()


@app.function_name("context")
@_trigger("context")
def context(req: str, context: func.Context) -> str:
    tc, rc = context.trace_context, context.retry_context
    return json.dumps({
        'invocation_id': context.invocation_id, 'function_name': context.function_name,
        'function_directory': context.function_directory.endswith('inv_v2_exec'),
        'trace_parent': tc.trace_parent, 'trace_state': tc.trace_state,
        'attributes': tc.attributes, 'Traceparent': tc.Traceparent,
        'Tracestate': tc.Tracestate, 'Attributes': tc.Attributes,
        'retry_count': rc.retry_count, 'max_retry_count': rc.max_retry_count,
        'retry_message': rc.rpc_exception.message,
        'tls': context.thread_local_storage.invocation_id,
        'loop': _has_loop()}, sort_keys=True)


def _has_loop():
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        return False


@app.function_name("context_async")
@_trigger("context_async")
async def context_async(req: str, context: func.Context) -> str:
    return json.dumps({'invocation_id': context.invocation_id, 'loop': _has_loop(),
                       'retry_count': context.retry_context.retry_count})


@app.function_name("stray_exit")
@_trigger("stray_exit")
async def stray_exit(req: str) -> str:
    async def bad():
        sys.exit('stray')
    asyncio.ensure_future(bad())  # never awaited: escapes to the loop
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    return 'survived'
