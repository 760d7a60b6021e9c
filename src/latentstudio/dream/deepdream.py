"""DeepDream: gradient ascent on a layer's activation (its mean or L2), tiled, over octaves.

Mordvintsev, Olah & Tyka, "Inceptionism" (2015). Per step the gradient is normalised by its mean
absolute value, so `step` is the mean change per pixel (images live in [-1, 1] and are clamped
there). Octaves run from the smallest scale up; at each scale the detail dreamed so far
(dreamed - base) is upscaled onto the sharp base, weakened by `blend`.

Large images are cut into tiles of at most about `tile` pixels a side and the gradient is computed
tile by tile, so memory for activations is bounded by the tile, not the image. As in the original
notebook, every step rolls the image by a random shift first, so tile borders never stay in one
place and no seams show.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from latentstudio.dream.networks import OBJECTIVES, LayerObjective
from latentstudio.errors import UserError
from latentstudio.precision import cpu_autocast

# Octaves stop shrinking at this short side: smaller images give the network too little to see.
MIN_OCTAVE_SIDE = 32
# Largest random shift per step of an untiled image: GoogLeNet's and Lite0's total stride.
JITTER = 32
# Same-size tiles run through the network together on a GPU, where one 512 px tile is too little
# work to hide the launch overhead of a few hundred kernels; memory stays bounded (8 tiles' worth).
CUDA_TILE_BATCH = 8


@dataclass
class DreamConfig:
    """What to maximise and how; the defaults are the original notebook's (4 octaves of 10 steps).

    layer / channels: which activation (None: the network's default layer, all channels);
    channels is a spec like "0-5,120". objective: "mean" or "l2" (None: the network's default).
    octaves: scales processed; octave_scale: size ratio between them. iterations: gradient steps
    per octave, each changing pixels by `step` on average. tile: largest tile side (0: never
    tile). blend: share of the original mixed back into the carried detail at each octave.
    keep_colors: keep the original chroma, dream only the luminance. seed: the random shifts.
    """

    layer: str | None = None
    channels: str | None = None
    objective: str | None = None
    octaves: int = 4
    octave_scale: float = 1.4
    iterations: int = 10
    step: float = 0.02
    tile: int = 512
    blend: float = 0.2
    keep_colors: bool = False
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective is not None and self.objective not in OBJECTIVES:
            raise UserError(f"unknown objective {self.objective!r}; choose one of: "
                            f"{', '.join(OBJECTIVES)}")
        if self.octaves < 1:
            raise UserError(f"--octaves must be at least 1, got {self.octaves}")
        if not (math.isfinite(self.octave_scale) and self.octave_scale > 1):
            raise UserError(f"--octave-scale must be above 1, got {self.octave_scale}")
        if self.iterations < 1:
            raise UserError(f"--iterations must be at least 1, got {self.iterations}")
        if not (math.isfinite(self.step) and self.step > 0):
            raise UserError(f"--step must be positive, got {self.step}")
        if self.tile != 0 and self.tile < 32:
            raise UserError(f"--tile must be 0 (no tiles) or at least 32, got {self.tile}")
        if not 0 <= self.blend < 1:
            raise UserError(f"--blend must be in [0, 1), got {self.blend}")


@dataclass
class DreamResult:
    """The dreamed image (1, C, H, W) in [-1, 1] and the objective before each step."""

    image: torch.Tensor
    objective: list[float] = field(default_factory=list)


def octave_sizes(height: int, width: int, octaves: int, scale: float) -> list[tuple[int, int]]:
    """Image sizes from the full size down, never below MIN_OCTAVE_SIDE on the short side."""
    sizes = [(height, width)]
    for i in range(1, octaves):
        h, w = round(height / scale**i), round(width / scale**i)
        if min(h, w) < MIN_OCTAVE_SIDE:
            break
        sizes.append((h, w))
    return sizes


def tile_edges(length: int, tile: int) -> list[int]:
    """Cut points along one side: every `tile` pixels, a last sliver merged into its neighbour."""
    if tile <= 0 or length <= tile:
        return [0, length]
    edges = [*range(0, length, tile), length]
    if len(edges) > 2 and edges[-1] - edges[-2] < tile // 4:  # too little context on its own
        del edges[-2]
    return edges


def tiles(height: int, width: int, tile: int) -> list[tuple[slice, slice]]:
    """(rows, cols) slices covering the image with tiles of at most about `tile` a side."""
    ys, xs = tile_edges(height, tile), tile_edges(width, tile)
    return [(slice(y0, y1), slice(x0, x1))
            for y0, y1 in zip(ys, ys[1:], strict=False) for x0, x1 in zip(xs, xs[1:], strict=False)]


def roll_into(src: torch.Tensor, dst: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """`torch.roll(src, (dy, dx), (2, 3))` written into the preallocated `dst` (no allocation)."""
    h, w = src.shape[2:]
    dy, dx = dy % h, dx % w
    for ys, yd in ((slice(0, h - dy), slice(dy, h)), (slice(h - dy, h), slice(0, dy))):
        for xs, xd in ((slice(0, w - dx), slice(dx, w)), (slice(w - dx, w), slice(0, dx))):
            dst[:, :, yd, xd] = src[:, :, ys, xs]
    return dst


def gradient(image: torch.Tensor, objective: LayerObjective, out: torch.Tensor, tile: int = 0,
             batch: int = 1) -> tuple[torch.Tensor, int]:
    """Write d(objective)/d(image) into `out`, tile by tile (up to `batch` same-size tiles at once).

    Returns the objective summed over all tiles (a 0-d tensor, left on the device to avoid a sync)
    and the number of activation values it covers.
    """
    cuda = image.device.type == "cuda"
    amp = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else cpu_autocast(image.device, "dream")
    total = torch.zeros((), device=image.device)
    count = 0
    by_shape: dict[tuple[int, int], list[tuple[slice, slice]]] = {}
    for rows, cols in tiles(image.shape[2], image.shape[3], tile):
        by_shape.setdefault((rows.stop - rows.start, cols.stop - cols.start), []).append((rows, cols))
    for boxes in by_shape.values():
        for i in range(0, len(boxes), batch):
            chunk = boxes[i:i + batch]
            if len(chunk) == 1:
                x = image[:, :, chunk[0][0], chunk[0][1]].detach()  # a view: no copy
            else:
                x = torch.cat([image[:, :, rows, cols] for rows, cols in chunk])
            x.requires_grad_(True)
            inp = x.contiguous(memory_format=torch.channels_last)  # as the network (DreamNet.to)
            with amp:
                value, size = objective(inp)
            (grad,) = torch.autograd.grad(value, x)
            for j, (rows, cols) in enumerate(chunk):
                out[:, :, rows, cols] = grad[j:j + 1]
            total += value.detach()
            count += size
    return total, count


def ascend(image: torch.Tensor, objective: LayerObjective, iterations: int, step: float,
           tile: int = 0, generator: torch.Generator | None = None,
           on_step: Callable[[], object] | None = None) -> list[torch.Tensor]:
    """`iterations` normalised gradient steps on `image`, in place. Returns the objective per step.

    Each step works on the image rolled by a random shift (and rolls the result back). When the
    image is cut into tiles the shift spans a whole tile, so tile borders fall on different pixels
    every step and no seams build up; otherwise a jitter of up to JITTER pixels still moves the
    stride pattern of the network's downsampling, so no checkerboard builds up. An image that
    fits in one tile thus gets the same shifts, and the same result, tiled or not.
    """
    height, width = image.shape[2:]
    tiled = 0 < tile < max(height, width)
    span = tile if tiled else JITTER
    batch = CUDA_TILE_BATCH if image.device.type == "cuda" else 1
    rolled, grad = torch.empty_like(image), torch.empty_like(image)
    values = []
    for _ in range(iterations):
        dy, dx = (0, 0) if generator is None else (
            torch.randint(0, span, (2,), generator=generator).tolist())
        roll_into(image, rolled, dy, dx)
        total, count = gradient(rolled, objective, grad, tile, batch)
        values.append(total / max(count, 1))
        # mean |g| normalisation makes `step` the mean change per pixel at every scale and layer
        grad.mul_(step / (grad.abs().mean() + 1e-8))
        rolled.add_(grad).clamp_(-1, 1)
        roll_into(rolled, image, -dy, -dx)
        if on_step is not None:
            on_step()
    return values


def dream(image: torch.Tensor, objective: LayerObjective, config: DreamConfig,
          progress: bool = False) -> DreamResult:
    """Dream on `image` (1, C, H, W) in [-1, 1]; returns the dreamed image, same size, in [-1, 1].

    `image` must be on the network's device and is not modified.
    """
    from tqdm import tqdm

    if image.dim() != 4 or image.shape[0] != 1:
        raise ValueError(f"expected one image (1, C, H, W), got {tuple(image.shape)}")
    generator = torch.Generator().manual_seed(config.seed)
    height, width = image.shape[2:]
    sizes = octave_sizes(height, width, config.octaves, config.octave_scale)
    values: list[torch.Tensor] = []
    detail: torch.Tensor | None = None
    current = image
    with tqdm(total=len(sizes) * config.iterations, desc="dream", disable=not progress,
              leave=False) as bar:
        for size in reversed(sizes):
            full = size == (height, width)
            base = image if full else F.interpolate(image, size=size, mode="bilinear",
                                                    antialias=True, align_corners=False)
            if detail is None:
                current = base.clone()
            else:
                detail = F.interpolate(detail, size=size, mode="bilinear", align_corners=False)
                current = detail.mul_(1 - config.blend).add_(base).clamp_(-1, 1)
            values += ascend(current, objective, config.iterations, config.step, config.tile,
                             generator, on_step=bar.update)
            if not full:
                detail = current.sub_(base)  # reuses the buffer: current is not needed again
    if config.keep_colors and current.shape[1] == 3:
        current = keep_colors(current, image)
    return DreamResult(current, torch.stack(values).tolist())


def luminance(image: torch.Tensor) -> torch.Tensor:
    """BT.601 luma (the Y of YCbCr) of RGB images (N, 3, H, W), keeping the channel dim."""
    r, g, b = image[:, 0:1], image[:, 1:2], image[:, 2:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def keep_colors(dreamed: torch.Tensor, original: torch.Tensor) -> torch.Tensor:
    """The original's chroma with the dreamed luminance (luminance transfer in YCbCr).

    Adding the same amount to R, G and B changes Y by that amount and leaves Cb and Cr (scaled
    B - Y and R - Y) alone, so the transfer is original + (Y_dreamed - Y_original) per pixel.
    """
    delta = luminance(dreamed) - luminance(original)
    return (original + delta).clamp_(-1, 1)
