import json
import os

from azure.functions import FuncExtensionBase

calls = []


class Recorder(FuncExtensionBase):
    """A function-level extension: registered for this folder ("Hooked")."""

    def __init__(self, file_path):
        super().__init__(file_path)

    def post_function_load(self, function_name, function_directory, *args, **kwargs):
        calls.append(['load', function_name, os.path.basename(function_directory)])

    def pre_invocation(self, logger, context, func_args, *args, **kwargs):
        calls.append(['pre', context.function_name, sorted(func_args)])
        func_args['req'] = func_args['req'].upper()

    def post_invocation(self, logger, context, func_args, func_ret, *args, **kwargs):
        calls.append(['post', func_ret])


recorder = Recorder(__file__)


def main(req: str):
    return json.dumps({'req': req, 'calls': calls})
