def main() -> str:
    return "no parameters"
