"""latentstudio: train, explore, curate and evaluate generative image models."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

    import torch

    from latentstudio.export import ImageGenerator

__version__ = "0.2.0.dev0"


def load(path: str | Path, device: str | torch.device = "cpu",
         checkpoint: str = "last") -> ImageGenerator:
    """A trained generator from an export folder (`latentstudio export`) or a run folder:
    `.sample(n, seed=0)` gives images in [-1, 1], the same as `latentstudio sample --seed`;
    `.interpolate(a_seed, b_seed, steps)`, `.to(device)`. Does not import the training code."""
    from latentstudio.export import load as load_generator

    return load_generator(path, device=device, checkpoint=checkpoint)
