def main(timer):
    pass
