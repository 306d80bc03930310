main = "not a function"
