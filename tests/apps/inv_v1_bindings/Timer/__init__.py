import json
import logging
import os
import typing

import azure.functions as func

def main(timer: func.TimerRequest, out: func.Out[str]) -> None:
    if timer.past_due:
        out.set('late')
