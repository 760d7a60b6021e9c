"""Adversarial losses on raw discriminator outputs (logits or critic scores)."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def _bce_d(real: torch.Tensor, fake: torch.Tensor, real_target: torch.Tensor,
           fake_target: torch.Tensor) -> torch.Tensor:
    return (F.binary_cross_entropy_with_logits(real, real_target)
            + F.binary_cross_entropy_with_logits(fake, fake_target))


def _hinge_d(real: torch.Tensor, fake: torch.Tensor, real_target: torch.Tensor,
             fake_target: torch.Tensor) -> torch.Tensor:
    return F.relu(1 - real).mean() + F.relu(1 + fake).mean()


def _wasserstein_d(real: torch.Tensor, fake: torch.Tensor, real_target: torch.Tensor,
                   fake_target: torch.Tensor) -> torch.Tensor:
    return fake.mean() - real.mean()


DiscriminatorLoss = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]

# Targets (label smoothing / label noise) only affect the BCE loss.
DISCRIMINATOR_LOSSES: dict[str, DiscriminatorLoss] = {
    "bce": _bce_d, "hinge": _hinge_d, "wasserstein": _wasserstein_d,
}

GENERATOR_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    # Non-saturating generator loss (Goodfellow et al. 2014, section 3).
    "bce": lambda fake: F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake)),
    "hinge": lambda fake: -fake.mean(),
    "wasserstein": lambda fake: -fake.mean(),
}


def discriminator_loss(kind: str, real: torch.Tensor, fake: torch.Tensor,
                       real_target: torch.Tensor | None = None,
                       fake_target: torch.Tensor | None = None) -> torch.Tensor:
    """The discriminator's (critic's) loss for outputs on real and fake images."""
    real_target = torch.ones_like(real) if real_target is None else real_target
    fake_target = torch.zeros_like(fake) if fake_target is None else fake_target
    return DISCRIMINATOR_LOSSES[kind](real, fake, real_target, fake_target)


def generator_loss(kind: str, fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss for the discriminator's outputs on its images."""
    return GENERATOR_LOSSES[kind](fake)
