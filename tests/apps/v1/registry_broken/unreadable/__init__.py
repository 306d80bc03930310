def main(x):
    pass
