"""One module per command; each function takes Settings first and returns a result."""
