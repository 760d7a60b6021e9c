"""Helpers for the exploration tests: tiny seeded runs, one CPU thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch

from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny nets: extra threads only spin-wait, which on a shared machine is many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def make_run(root: Path, model: str, steps: int, data: str = "shapes:256", **settings) -> Path:
    """Train a tiny run into root/model and return its folder."""
    cfg = dict(model=model, data=data, resolution=16, width=8, latent_dim=16, batch_size=32,
               steps=steps, device="cpu", precision="fp32", preview_every=1000, preview_count=4,
               checkpoint_every=1000, log_every=50, seed=0, out=str(root / model))
    cfg.update(settings)
    with one_thread():
        return Path(train(TrainConfig(**cfg), progress=False))
