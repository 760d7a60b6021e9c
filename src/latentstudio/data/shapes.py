"""The built-in dataset: Kandinsky-like compositions of coloured shapes, made from a seed.

Each image is a sheet of paper with one large "dominant" shape near the centre, which gives its
label, and up to two small accent shapes of other kinds scattered around it. No download; the same
seed gives the same images.

The dominant shape is upright (tilted at most ~9 degrees; lines rise to the right) on one paper
colour, so that a small GAN learns the four classes within minutes on a CPU. With free rotation,
anywhere on six backgrounds, DCGAN still drew coloured blobs after 3,000 steps.
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

_PAPER = (245, 240, 225)
_PALETTE = np.array(  # red, blue, yellow, black, green, orange
    [[220, 40, 40], [30, 70, 180], [250, 200, 30], [20, 20, 20], [40, 150, 90], [240, 120, 30]]
)
# Angle of each class's upright pose in _draw's parametrisation: a square with horizontal
# edges, a triangle pointing up, a line rising to the right.
_UPRIGHT = {0: 0.0, 1: math.pi / 4, 2: -math.pi / 2, 3: -math.pi / 4}
_TILT = 0.15  # radians either way


def _draw(draw: ImageDraw.ImageDraw, kind: int, cx: float, cy: float, size: float, angle: float,
          color: tuple[int, ...]) -> None:
    r = size / 2
    if kind == 0:
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=color)
    elif kind == 1:
        pts = [(cx + r * math.cos(angle + k * math.pi / 2), cy + r * math.sin(angle + k * math.pi / 2))
               for k in range(4)]
        draw.polygon(pts, fill=color)
    elif kind == 2:
        pts = [(cx + r * math.cos(angle + k * 2 * math.pi / 3), cy + r * math.sin(angle + k * 2 * math.pi / 3))
               for k in range(3)]
        draw.polygon(pts, fill=color)
    else:
        dx, dy = r * math.cos(angle), r * math.sin(angle)
        draw.line([cx - dx, cy - dy, cx + dx, cy + dy], fill=color, width=max(2, int(size / 6)))


def render_shape_image(rng: np.random.Generator, resolution: int,
                       height: int | None = None) -> tuple[Image.Image, int]:
    """One composition and its label (the index of its dominant shape in CLASSES), resolution
    px wide and `height` (default: resolution) high; shapes scale with the shorter side."""
    height = height or resolution
    sw, sh = resolution * _SUPERSAMPLE, height * _SUPERSAMPLE
    s = min(sw, sh)
    img = Image.new("RGB", (sw, sh), _PAPER)
    draw = ImageDraw.Draw(img)
    label = int(rng.integers(len(CLASSES)))
    colors = [tuple(int(v) for v in _PALETTE[c]) for c in rng.permutation(len(_PALETTE))]
    for j in range(int(rng.integers(0, 3))):  # small accents first, so the big shape sits on top
        kind = int(rng.choice([k for k in range(len(CLASSES)) if k != label]))
        _draw(draw, kind, rng.uniform(0.15, 0.85) * sw, rng.uniform(0.15, 0.85) * sh,
              s * rng.uniform(0.12, 0.2), rng.uniform(0, 2 * math.pi), colors[1 + j])
    size = s * rng.uniform(0.55, 0.7)
    cx, cy = sw * (0.5 + rng.uniform(-0.06, 0.06)), sh * (0.5 + rng.uniform(-0.06, 0.06))
    angle = _UPRIGHT[label] + rng.uniform(-_TILT, _TILT)
    _draw(draw, label, cx, cy, size, angle, colors[0])
    return img.resize((resolution, height), Image.LANCZOS), label


def make_shapes(count: int, resolution: int, channels: int = 3, seed: int = 0,
                height: int | None = None) -> ImageSet:
    """`count` compositions at `resolution` px (x `height` px), deterministic for a given seed."""
    rng = np.random.default_rng(seed)
    out = np.empty((count, height or resolution, resolution, 3), dtype=np.uint8)
    labels = np.empty(count, dtype=np.int64)
    for i in range(count):
        img, labels[i] = render_shape_image(rng, resolution, height)
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
    return make_shapes(count, opts.resolution, opts.channels or 3, opts.seed, opts.height)
