import azure.functions as func

app = func.FunctionApp()
raise RuntimeError("the app refuses to import")
