import json
import logging
import os
import sys
import threading

import azure.functions as func
from azure.functions import AppExtensionBase

app = func.FunctionApp(http_auth_level=func.AuthLevel.ANONYMOUS)
calls = []


class Recorder(AppExtensionBase):
    """Records the app-level hooks around each invocation."""

    @classmethod
    def pre_invocation_app_level(cls, logger, context, func_args, *args, **kwargs):
        calls.append(('pre', context.function_name, sorted(func_args)))

    @classmethod
    def post_invocation_app_level(cls, logger, context, func_args, func_ret, *args, **kwargs):
        calls.append(('post', context.function_name, func_ret))


_sync = {'active': 0, 'peak': 0, 'lock': threading.Lock(), 'full': threading.Event()}


def _trigger():
    return app.generic_trigger(arg_name="req", type="customTrigger")


@app.function_name("env")
@_trigger()
def env(req: str) -> str:
    app_dir = os.path.dirname(os.path.abspath(__file__))
    return json.dumps({'FOO': os.environ.get('FOO'), 'HOST_ONLY': os.environ.get('HOST_ONLY'),
                       'cwd': os.getcwd() == app_dir, 'path': sys.path[-1] == app_dir},
                      sort_keys=True)


@app.function_name("debug_log")
@_trigger()
def debug_log(req: str) -> None:
    logging.debug('debug on')


@app.function_name("hooks")
@_trigger()
def hooks(req: str) -> str:
    # Concurrent wait_sync calls interleave: only their counts are stable.
    waits = [c[0] for c in calls if c[1] == 'wait_sync']
    return json.dumps([c for c in calls if c[1] != 'wait_sync'] +
                      [waits.count('pre'), waits.count('post')])


@app.function_name("wait_sync")
@_trigger()
def wait_sync(req: str) -> str:
    with _sync['lock']:
        _sync['active'] += 1
        _sync['peak'] = max(_sync['peak'], _sync['active'])
        if _sync['active'] == 2:
            _sync['full'].set()
    _sync['full'].wait()
    with _sync['lock']:
        _sync['active'] -= 1
    return str(_sync['peak'])
