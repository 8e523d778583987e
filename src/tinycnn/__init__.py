"""tinycnn: design, train and explain tiny CNNs under a hard parameter budget."""
__version__ = "0.1.0"
