import sys

import azure.functions as func

app = func.FunctionApp()
sys.exit("configuration missing")
