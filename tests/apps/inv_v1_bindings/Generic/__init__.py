import json
import logging
import os
import typing

import azure.functions as func

VALUES = {'bool': True, 'bytes': b'\x01b', 'dict': {'a': 1}, 'double': 1.5, 'int': -7,
          'list': [1, 'x'], 'none': None, 'str': 'text'}


def main(req: str):
    return VALUES[req]
