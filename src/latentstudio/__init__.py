"""latentstudio: train, explore, curate and evaluate generative image models."""

__version__ = "0.1.0"
