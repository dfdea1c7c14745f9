"""A reproducible scaling-law benchmark: train a grid, score it, fit laws, publish a dataset."""

__version__ = "0.1.0"
