"""latentstudio: train, explore, curate and evaluate generative image models."""

__version__ = "0.2.0.dev0"
