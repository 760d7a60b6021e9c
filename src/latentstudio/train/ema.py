"""Exponential moving average of a model's weights, used for previews and sampling.

With a ramp-up (StyleGAN2-ADA's ema_rampup), the average's half-life is at most `rampup` times
the images seen so far, so early in a run (or in a short one) the average follows the recent
weights instead of staying near the initial ones: --ema 0.999 on its own is a half-life of 693
steps, longer than many few-image runs.

A generator with batch norm evaluates with running statistics; copied from the trained network,
they describe its activations, not the average's, and shift the average's colours and shapes.
Given a `calibrate` function, the copy recomputes its own before it is used (BigGAN's "standing
statistics", Brock et al. 2019), from as many generated images as the use asks for. On the
30-minute runs of 500 emoji at 64 px (README, "Few images, high resolution") that lowered FID
(lite0) from 112.9 to 104-105 and FID (domain) from 0.44 to 0.34 for the dcgan, and from 86.7
to 82-83 and 0.60 to 0.48 for the fastgan.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
from torch import nn

# How many generated images the EMA generator's batch statistics are averaged over: for what is
# kept or measured (checkpoints, which sampling, evaluation and the gallery load; in-training
# FID), and for previews. Two 10-minute fastgan runs (500 emoji, 64 px, one thread each),
# FID (domain) on 5,000 samples with statistics drawn again from other latents: from 256
# images 0.204-0.230 and 0.196-0.253 (five draws each), from 1,024 0.199-0.203 and 0.187-0.202
# (three), from 4,096 0.196 and 0.197-0.202 (two). 1,024 images take about 2 s at 64 px on one
# CPU thread, 4,096 about 8.
CALIBRATION_IMAGES = 1024
# Previews and health checks (every 30-60 s) need less: 256 images, or 16 training batches where
# that is fewer. Batches shrink as images grow, and at 256 px (fastgan width 16, batch 8) 256
# images take 6 s on one CPU thread, 10-20% of the training time at that cadence; 128, 3 s.
PREVIEW_CALIBRATION_IMAGES = 256
PREVIEW_CALIBRATION_BATCHES = 16


def preview_calibration_images(batch_size: int) -> int:
    """How many generated images a preview's or health check's EMA batch statistics come from."""
    return min(PREVIEW_CALIBRATION_IMAGES, PREVIEW_CALIBRATION_BATCHES * batch_size)


def ramped_decay(decay: float, rampup: float, images_seen: int, batch_size: int) -> float:
    """`decay`, shortened so its half-life (in images) is at most rampup x images_seen."""
    if rampup <= 0:
        return decay
    return min(decay, 0.5 ** (batch_size / max(rampup * images_seen, 1e-8)))


def half_life_images(decay: float, batch_size: int) -> float:
    """How many images an EMA with this per-step decay takes to halve an old weight's share."""
    return batch_size * math.log(0.5) / math.log(decay)


def _running_norms(model: nn.Module) -> list[nn.Module]:
    """The batch-norm layers of `model` that keep running statistics."""
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def has_batchnorm(model: nn.Module) -> bool:
    """Whether `model` keeps running batch statistics."""
    return bool(_running_norms(model))


@torch.no_grad()
def standing_statistics(model: nn.Module, forward: Callable[[nn.Module], object], batches: int) -> None:
    """Replace `model`'s batch-norm running statistics by their average over `batches` calls of
    `forward(model)` in training mode; leaves `model` in eval mode."""
    norms = _running_norms(model)
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the calls
    model.train()
    for _ in range(batches):
        forward(model)
    model.eval()
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum


class EMA:
    """Keeps `shadow = decay * shadow + (1 - decay) * weights` after each update; buffers are copied.

    With `calibrate(shadow, images)` (which runs the shadow on that many generated images in
    training mode), `calibrated(images)` gives the shadow with batch-norm statistics of its own
    weights.
    """

    def __init__(self, model: nn.Module, decay: float,
                 calibrate: Callable[[nn.Module, int], None] | None = None) -> None:
        self.decay = decay
        self.shadow = copy.deepcopy(model).eval().requires_grad_(False)
        self._calibrate = calibrate if has_batchnorm(model) else None
        # How many images the shadow's batch statistics come from; a copy's are the model's own.
        self._calibrated_on = math.inf

    @torch.no_grad()
    def update(self, model: nn.Module, decay: float | None = None) -> None:
        """Average `model` in with `decay` (default: the configured one)."""
        decay = self.decay if decay is None else decay
        for s, p in zip(self.shadow.parameters(), model.parameters(), strict=True):
            s.lerp_(p.detach(), 1 - decay)
        for s, b in zip(self.shadow.buffers(), model.buffers(), strict=True):
            s.copy_(b)
        self._calibrated_on = 0

    def calibrated(self, images: int) -> nn.Module:
        """The shadow, its batch statistics recomputed from `images` generated images unless,
        since the weights last moved, they already come from at least as many."""
        if self._calibrate is not None and self._calibrated_on < images:
            self._calibrate(self.shadow, images)
            self._calibrated_on = images
        return self.shadow
