def main(req):
    pass
