# Function modules count their imports here: module-level code runs once.
imports = {}


def imported(module_name):
    imports[module_name] = imports.get(module_name, 0) + 1
    if imports[module_name] > 1:
        raise RuntimeError(f"{module_name} was imported twice")
