def main(req, res):
    pass
