"""The params file: the one config checker and the grid it describes."""
