"""Lipschitz constraints for Wasserstein critics: gradient penalty and weight clipping."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn


def gradient_penalty(critic: Callable[[torch.Tensor], torch.Tensor], real: torch.Tensor,
                     fake: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """WGAN-GP penalty E[(||grad D(x_hat)||_2 - 1)^2] on random interpolates (Gulrajani et al. 2017)."""
    # One mixing weight per sample, broadcast over the remaining dims (images or flat vectors).
    alpha = torch.rand(real.shape[0], *([1] * (real.dim() - 1)), device=real.device,
                       generator=generator, dtype=real.dtype)
    x_hat = (alpha * real.detach() + (1 - alpha) * fake.detach()).requires_grad_(True)
    out = critic(x_hat)
    (grad,) = torch.autograd.grad(out.sum(), x_hat, create_graph=True)
    norm = grad.flatten(1).norm(2, dim=1)
    return ((norm - 1) ** 2).mean()


def r1_penalty(real: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """R1 penalty E[||grad D(x)||^2] on real images (Mescheder et al. 2018); `real` must
    require grad and `scores` be D's outputs on it. Half the paper's gamma goes in the weight."""
    (grad,) = torch.autograd.grad(scores.sum(), real, create_graph=True)
    return grad.float().flatten(1).square().sum(1).mean()


@torch.no_grad()
def clip_weights(module: nn.Module, clip: float) -> None:
    """Clamp every parameter of `module` into [-clip, clip] (the original WGAN, Arjovsky et al. 2017)."""
    for p in module.parameters():
        p.clamp_(-clip, clip)
