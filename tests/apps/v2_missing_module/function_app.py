import azure.functions as func
import requests_but_not_installed

app = func.FunctionApp()
