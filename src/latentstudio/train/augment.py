"""DiffAugment (Zhao et al. 2020): differentiable colour, translation and cutout for small datasets.

Applied to real and fake images alike before the discriminator, so the generator learns the
un-augmented distribution while the discriminator cannot memorise a few hundred images. A
policy (`--diffaug-policy`) names which transforms to apply: the paper's is all three; FastGAN's
official code leaves out cutout.

Images with alpha (2 or 4 channels, alpha last) stay transparent where translation and cutout
open up space (alpha -1, colour 0), and colour jitter leaves their alpha alone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from latentstudio.errors import UserError


def _rand(x: torch.Tensor, g: torch.Generator | None) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype, generator=g)


def _blank(x: torch.Tensor) -> torch.Tensor:
    """(1, C, 1, 1): what empty space holds: 0 in every channel, and -1 (clear) in an alpha one."""
    blank = torch.zeros(1, x.shape[1], 1, 1, device=x.device, dtype=x.dtype)
    if x.shape[1] in (2, 4):
        blank[:, -1] = -1
    return blank


def color(x: torch.Tensor, g: torch.Generator | None = None) -> torch.Tensor:
    if x.shape[1] in (2, 4):  # jitter the colour only; the draws are the same as without alpha
        return torch.cat([color(x[:, :-1], g), x[:, -1:]], dim=1)
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
    blank = _blank(x)
    padded = F.pad(x - blank, [1, 1, 1, 1]) + blank
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
    keep = (~inside)[:, None].to(x.dtype)
    return x * keep + _blank(x) * (1 - keep)


TRANSFORMS = {"color": color, "translation": translation, "cutout": cutout}


def parse_policy(text: str) -> tuple[str, ...]:
    """The transforms a DiffAugment policy names ("color,translation"), or a UserError."""
    names = tuple(n.strip() for n in text.split(","))
    wrong = [n for n in names if n not in TRANSFORMS]
    if wrong or len(set(names)) != len(names):
        raise UserError(f"--diffaug-policy must list some of {', '.join(TRANSFORMS)} once each, "
                        f"separated by commas (e.g. color,translation), got {text!r}")
    return names


def diffaug(x: torch.Tensor, g: torch.Generator | None = None,
            policy: tuple[str, ...] = tuple(TRANSFORMS)) -> torch.Tensor:
    """x with the policy's transforms applied in its order (default: all three, as the paper)."""
    for name in policy:
        x = TRANSFORMS[name](x, g)
    return x
