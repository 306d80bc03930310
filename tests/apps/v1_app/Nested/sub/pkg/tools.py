def wrap(text):
    return f"[{text}]"
