"""Training: the model-agnostic loop, per-family steps, checkpoints, EMA, run-folder callbacks."""
