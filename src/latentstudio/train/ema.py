"""Exponential moving average of a model's weights, used for previews and sampling.

With a ramp-up (StyleGAN2-ADA's ema_rampup), the average's half-life is at most `rampup` times
the images seen so far, so early in a run (or in a short one) the average follows the recent
weights instead of staying near the initial ones: --ema 0.999 on its own is a half-life of 693
steps, longer than many few-image runs.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn


def ramped_decay(decay: float, rampup: float, images_seen: int, batch_size: int) -> float:
    """`decay`, shortened so its half-life (in images) is at most rampup x images_seen."""
    if rampup <= 0:
        return decay
    return min(decay, 0.5 ** (batch_size / max(rampup * images_seen, 1e-8)))


def half_life_images(decay: float, batch_size: int) -> float:
    """How many images an EMA with this per-step decay takes to halve an old weight's share."""
    return batch_size * math.log(0.5) / math.log(decay)


class EMA:
    """Keeps `shadow = decay * shadow + (1 - decay) * weights` after each update; buffers are copied."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        """Average `model` in with `decay` (default: the configured one)."""
        decay = self.decay if decay is None else decay
        for s, p in zip(self.shadow.parameters(), model.parameters(), strict=True):
            s.lerp_(p.detach(), 1 - decay)
        for s, b in zip(self.shadow.buffers(), model.buffers(), strict=True):
            s.copy_(b)
