import json
import logging
import os
import typing

import azure.functions as func

def main(name: str) -> str:
    return 'Hello ' + name
