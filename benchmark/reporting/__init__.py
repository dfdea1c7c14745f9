"""The dataset card, figures and tables."""
