"""Helpers for the exploration tests: the settings of their tiny runs, one CPU thread."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch


@contextmanager
def one_thread() -> Iterator[None]:
    """Tiny nets: extra threads only spin-wait, which on a shared machine is many times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


# Tiny seeded runs for exploration: 16 px, few checkpoints and grids (tiny_run's settings).
EXPLORE = dict(data="shapes:256", resolution=16, width=8, latent_dim=16, batch_size=32,
               precision="fp32", preview_every=1000, preview_count=4, checkpoint_every=1000,
               log_every=50, seed=0)
