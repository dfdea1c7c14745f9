"""The metric registry and the scores computed from predictions."""
