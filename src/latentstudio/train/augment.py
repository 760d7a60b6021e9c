"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout for small datasets.

Applied to real and fake images alike before the discriminator, so the generator learns the
un-augmented distribution while the discriminator cannot memorise a few hundred images.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _rand(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype, generator=g)


def color(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    x = x + (_rand(x, g) - 0.5)
    mean = x.mean(dim=1, keepdim=True)
    x = (x - mean) * (_rand(x, g) * 2) + mean
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (_rand(x, g) + 0.5) + mean


def translation(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.125) -> torch.Tensor:
    n, _, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device, generator=g)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device, generator=g)
    gy, gx = torch.meshgrid(torch.arange(h, device=x.device), torch.arange(w, device=x.device),
                            indexing="ij")
    gy = (gy[None] + ty + 1).clamp(0, h + 1)
    gx = (gx[None] + tx + 1).clamp(0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1])
    idx = (gy * (w + 2) + gx).flatten(1)  # (n, h*w) into the padded plane
    flat = padded.flatten(2)
    out = flat.gather(2, idx[:, None, :].expand(-1, x.shape[1], -1))
    return out.view_as(x)


def cutout(x: torch.Tensor, g: torch.Generator | None = None, ratio: float = 0.5) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    oy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device, generator=g)
    ox = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device, generator=g)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - oy + ch // 2).clamp(0) < ch) & (ys - oy + ch // 2 >= 0)
    inside = inside & ((xs - ox + cw // 2) >= 0) & ((xs - ox + cw // 2) < cw)
    return x * (~inside)[:, None].to(x.dtype)


def diffaug(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    """The paper's 'color,translation,cutout' policy."""
    return cutout(translation(color(x, g), g), g)


AUGMENTS = {"none": lambda x, g=None: x, "diffaug": diffaug}
