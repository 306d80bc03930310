raise RuntimeError("PYTHON_SCRIPT_FILE_NAME names main_app.py, not this file")
