"""Spectral normalisation (Miyato et al. 2018) whose forward pass never writes to its vectors.

torch's own parametrisation runs a power iteration inside every forward in training mode,
updating its vectors `_u`/`_v` in place. Compiled by torch 2.13, FastGAN's discriminator called on
real and then on fake images before one backward fails in that backward ("modified by an inplace
operation": the compiled graph saved the vector itself, which the second call then updated). Here
the forward only reads the vectors; the training step calls `power_iteration` once per step
before any forward, so nothing a pending backward saved changes under it. The buffers have
torch's names and shapes, so checkpoints load into either.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

# torch's initial iterations, so that sigma is close from the first step.
INITIAL_ITERATIONS = 15


class SpectralNorm(nn.Module):
    """Parametrisation: weight / sigma, sigma the largest singular value as estimated by u and v."""

    def __init__(self, weight: torch.Tensor, dim: int = 0, eps: float = 1e-12) -> None:
        super().__init__()
        self.dim = dim if dim >= 0 else dim + weight.ndim
        self.eps = eps
        if weight.ndim > 1:
            mat = self.matrix(weight)
            h, w = mat.shape
            # Drawn as torch's are, so a seed builds the same networks as before.
            self.register_buffer("_u", F.normalize(mat.new_empty(h).normal_(0, 1), dim=0, eps=eps))
            self.register_buffer("_v", F.normalize(mat.new_empty(w).normal_(0, 1), dim=0, eps=eps))
            self.iterate(mat, INITIAL_ITERATIONS)

    def matrix(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight as a matrix with `dim` as its rows."""
        if self.dim != 0:
            weight = weight.permute(self.dim, *(d for d in range(weight.dim()) if d != self.dim))
        return weight.flatten(1)

    @torch.no_grad()
    def iterate(self, mat: torch.Tensor, n: int = 1) -> None:
        """n steps of the power iteration on the weight matrix `mat`."""
        mat = mat.detach().to(self._u.dtype)
        for _ in range(n):
            self._u = F.normalize(torch.mv(mat, self._v), dim=0, eps=self.eps, out=self._u)
            self._v = F.normalize(torch.mv(mat.H, self._u), dim=0, eps=self.eps, out=self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        if weight.ndim == 1:
            return F.normalize(weight, dim=0, eps=self.eps)
        # Copies, so that autograd never saves the buffers that the next step's iteration updates.
        u = self._u.clone(memory_format=torch.contiguous_format)
        v = self._v.clone(memory_format=torch.contiguous_format)
        return weight / torch.vdot(u, torch.mv(self.matrix(weight), v))


def spectral_norm(module: nn.Module, name: str = "weight", eps: float = 1e-12) -> nn.Module:
    """`module` with spectral normalisation of its `name` parameter; transposed convolutions are
    normalised over their output channels (dim 1), as torch's spectral_norm does."""
    transposed = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)
    weight = getattr(module, name)
    parametrize.register_parametrization(
        module, name, SpectralNorm(weight, 1 if isinstance(module, transposed) else 0, eps))
    return module


def power_iteration(net: nn.Module) -> None:
    """One power-iteration step for every spectral norm in `net` (once per training step)."""
    for module in net.modules():
        if not parametrize.is_parametrized(module):
            continue
        for param in module.parametrizations.values():
            for p in param:
                if isinstance(p, SpectralNorm) and hasattr(p, "_u"):
                    p.iterate(p.matrix(param.original))
