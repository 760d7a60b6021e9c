"""Adaptive discriminator augmentation (Karras et al. 2020, "Training Generative Adversarial
Networks with Limited Data"): augment what the discriminator sees with probability p, and steer p
by how sure the discriminator is about real images.

The overfitting signal is r = E[sign(D(real))] over the last `interval` steps: near 0 when the
discriminator cannot tell, near 1 when it has memorised the training images. Every `interval`
steps p moves by ±(images seen) / (speed_kimg * 1000) towards keeping r at `target` (0.6 in the
paper), so p can go from 0 to 1 in `speed_kimg` thousand images (the paper's 500 suits GPU runs
of millions of images; runs of a few thousand steps need a faster setting).

The augmentations are the differentiable ones of DiffAugment plus, as in the paper's geometric
group, a horizontal flip, quarter turns and a random scale and rotation (reflection-padded), each
applied to an image with probability p, to real and generated images alike, so the generator
still learns the un-augmented images (p < ~0.8 keeps the augmentations from leaking). On images
with alpha they are DiffAugment's alpha-aware ones: no opaque borders, colour jitter off alpha.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from latentstudio.train.augment import color, cutout, translation


def _flip(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    return x.flip(3)


def _quarter_turns(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Each image turned by 90, 180 or 270 degrees (square images; others are left as they are)."""
    if x.shape[-1] != x.shape[-2]:
        return x
    k = torch.randint(1, 4, (x.shape[0], 1, 1, 1), device=x.device, generator=g)
    out = x
    for turns in (1, 2, 3):
        out = torch.where(k == turns, torch.rot90(x, turns, (2, 3)), out)
    return out


def _scale_rotate(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """Each image scaled by 2^N(0, 0.2) and rotated by a uniform angle (the paper's scale and
    rotation), with reflected borders."""
    n = x.shape[0]
    scale = torch.exp2(0.2 * torch.randn(n, device=x.device, generator=g))
    angle = (torch.rand(n, device=x.device, generator=g) * 2 - 1) * math.pi
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    zero = torch.zeros_like(cos)
    theta = torch.stack([torch.stack([cos, -sin, zero], 1), torch.stack([sin, cos, zero], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


OPS = (_flip, _quarter_turns, translation, _scale_rotate, color, cutout)


def augment(x: torch.Tensor, p: float, g: torch.Generator | None = None) -> torch.Tensor:
    """Each op applied to each image with probability p (its own draw per image and op)."""
    if p <= 0:
        return x
    for op in OPS:
        chosen = torch.rand(x.shape[0], 1, 1, 1, device=x.device, generator=g) < p
        x = torch.where(chosen, op(x, g), x)
    return x


class AdaController:
    """The augmentation probability p and its adjustment from the discriminator's outputs."""

    def __init__(self, target: float = 0.6, speed_kimg: float = 20.0, interval: int = 4,
                 p: float = 0.0) -> None:
        self.target, self.speed_kimg, self.interval = target, speed_kimg, interval
        self.p = p
        self.r = 0.0  # the last interval's overfitting signal (for the logs)
        self._signs: torch.Tensor | float = 0.0  # on the device: read once an interval
        self._count = 0
        self._steps = 0

    def observe(self, d_real: torch.Tensor) -> None:
        """Add one step's discriminator outputs on real images; adjust p every `interval` steps."""
        self._signs = self._signs + torch.sign(d_real.detach().float()).sum()
        self._count += d_real.numel()
        self._steps += 1
        if self._steps < self.interval:
            return
        self.r = float(self._signs) / max(self._count, 1)
        step = self._count / (self.speed_kimg * 1000)
        self.p = min(1.0, max(0.0, self.p + (step if self.r > self.target else -step)))
        self._signs, self._count, self._steps = 0.0, 0, 0

    def state_dict(self) -> dict[str, Any]:
        return {"p": self.p, "r": self.r, "signs": float(self._signs), "count": self._count,
                "steps": self._steps}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.p, self.r = float(state["p"]), float(state["r"])
        self._signs, self._count, self._steps = float(state["signs"]), int(state["count"]), \
            int(state["steps"])
