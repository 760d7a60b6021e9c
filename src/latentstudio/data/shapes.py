"""The built-in dataset: Kandinsky-like compositions of coloured shapes, made from a seed.

Each image has a plain background, one large "dominant" shape that gives its label, and up to two
small accent shapes of other kinds. No download; the same seed gives the same images.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image, ImageDraw

from latentstudio.data import DataOptions, register_source
from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError

CLASSES = ["circle", "square", "triangle", "line"]
DEFAULT_COUNT = 10000
_SUPERSAMPLE = 2  # draw larger, then downsample, for smooth edges at tiny sizes

_BACKGROUNDS = np.array(
    [[245, 240, 225], [235, 228, 210], [30, 35, 50], [200, 215, 230], [250, 250, 250], [60, 60, 60]]
)
_PALETTE = np.array(
    [
        [220, 40, 40], [30, 70, 180], [250, 200, 30], [20, 20, 20], [40, 150, 90],
        [240, 120, 30], [150, 50, 160], [90, 180, 220], [200, 200, 200], [255, 90, 150],
    ]
)


def _draw(draw: ImageDraw.ImageDraw, kind: int, cx: float, cy: float, size: float, angle: float,
          color: tuple[int, ...]) -> None:
    r = size / 2
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif kind == 1:
        pts = [(cx + r * math.cos(angle + k * math.pi / 2) * 1.0, cy + r * math.sin(angle + k * math.pi / 2))
               for k in range(4)]
        draw.polygon(pts, fill=color)
    elif kind == 2:
        pts = [(cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3))
               for k in range(3)]
        draw.polygon(pts, fill=color)
    else:
        dx, dy = r * math.cos(angle), r * math.sin(angle)
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=color, width=max(2, int(size / 7)))


def render_shape_image(rng: np.random.Generator, resolution: int) -> tuple[Image.Image, int]:
    """One composition and its label (the index of its dominant shape in CLASSES)."""
    s = resolution * _SUPERSAMPLE
    bg_i = rng.integers(len(_BACKGROUNDS))
    img = Image.new("RGB", (s, s), tuple(int(v) for v in _BACKGROUNDS[bg_i]))
    draw = ImageDraw.Draw(img)
    label = int(rng.integers(len(CLASSES)))
    colors = rng.permutation(len(_PALETTE))
    colors = [c for c in colors if np.abs(_PALETTE[c] - _BACKGROUNDS[bg_i]).sum() > 120]
    for j in range(int(rng.integers(0, 3))):  # small accents first, so the big shape sits on top
        kind = int(rng.choice([k for k in range(len(CLASSES)) if k != label]))
        size = s * rng.uniform(0.12, 0.22)
        _draw(draw, kind, rng.uniform(0.15, 0.85) * s, rng.uniform(0.15, 0.85) * s, size,
              rng.uniform(0, 2 * math.pi), tuple(int(v) for v in _PALETTE[colors[1 + j]]))
    size = s * rng.uniform(0.5, 0.72)
    margin = size / 2 * 0.9
    cx, cy = rng.uniform(margin, s - margin), rng.uniform(margin, s - margin)
    _draw(draw, label, cx, cy, size, rng.uniform(0, 2 * math.pi), tuple(int(v) for v in _PALETTE[colors[0]]))
    return img.resize((resolution, resolution), Image.LANCZOS), label


def make_shapes(count: int, resolution: int, channels: int = 3, seed: int = 0) -> ImageSet:
    """`count` compositions at `resolution` px, deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, resolution, resolution, 3), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        img, labels[i] = render_shape_image(rng, resolution)
        out[i] = np.asarray(img)
    images = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    if channels == 1:
        weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
        images = (images.float() * weights).sum(1, keepdim=True).round().clamp(0, 255).to(torch.uint8)
    return ImageSet(images, torch.from_numpy(labels), list(CLASSES), "shapes")


@register_source("shapes")
def load_shapes(arg: str, opts: DataOptions) -> ImageSet:
    """`shapes` or `shapes:N`."""
    try:
        count = int(arg) if arg else DEFAULT_COUNT
    except ValueError:
        raise UserError(f"shapes:N takes a whole number of images, not {arg!r}") from None
    if count <= 0:
        raise UserError(f"shapes:N needs a positive count, not {count}")
    if opts.limit is not None:
        count = min(count, opts.limit)
    return make_shapes(count, opts.resolution, opts.channels or 3, opts.seed)
