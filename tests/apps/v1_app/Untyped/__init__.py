def main(req, row):
    return row
