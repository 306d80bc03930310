import module_that_does_not_exist


def main(req):
    return "never"
