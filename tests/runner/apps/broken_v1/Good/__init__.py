def main(req):
    return "still healthy"
