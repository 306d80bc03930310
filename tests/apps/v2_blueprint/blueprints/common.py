def normalise(text):
    return text.strip().lower()
