"""HyCon reference pipeline: data acquisition and alignment, model, losses, training, metrics, reporting."""

__version__ = "0.1.0"
