"""distill: distillation data with top-k teacher log-probs; curate it, train on it."""

__version__ = "0.1.0"
