def handler(msg, outblob):
    outblob.set(msg)
