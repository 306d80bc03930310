# shared helpers (no function.json: not a function)
