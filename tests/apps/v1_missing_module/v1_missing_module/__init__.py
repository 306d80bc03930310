import azure.functions as func
import no_such_module_for_azfunc_tests


def main(req: func.HttpRequest) -> str:
    return "never"
