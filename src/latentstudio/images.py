"""Converting between model tensors and pictures: uint8, grids, PNG files, GIFs."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import torch
from PIL import Image

from latentstudio import atomic
from latentstudio.errors import UserError

# Pillow's own decompression-bomb threshold (2 x Image.MAX_IMAGE_PIXELS, about 13400 x 13400):
# above it every command refuses a picture, before decoding a single pixel.
MAX_PIXELS = 178_956_970


class ImageTooLarge(UserError):
    """An image file with more pixels than MAX_PIXELS."""


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Images in [-1, 1] (N, C, H, W) as uint8 in [0, 255]."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 images as float in [-1, 1] (a new tensor)."""
    return x.to(torch.float32, copy=True).div_(127.5).sub_(1.0)


def to_pil(image: torch.Tensor) -> Image.Image:
    """One image (C, H, W), uint8 or float in [-1, 1], as a PIL image (L or RGB)."""
    if image.dtype != torch.uint8:
        image = to_uint8(image[None])[0]
    arr = image.cpu().permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(arr, "RGB")


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2,
              pad_value: int = 255) -> Image.Image:
    """Tile (N, C, H, W) images into one picture with `nrow` images per row (default: square)."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    images = images.cpu()
    n, c, h, w = images.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = torch.full((c, rows * (h + padding) + padding, nrow * (w + padding) + padding), pad_value,
                      dtype=torch.uint8)
    for i in range(n):
        r, k = divmod(i, nrow)
        y, x = padding + r * (h + padding), padding + k * (w + padding)
        grid[:, y:y + h, x:x + w] = images[i]
    return to_pil(grid)


VIEW_SIDE = 512  # pictures meant for looking at (grids, walks) are at least this wide by default


def enlarge(image: Image.Image, side: int | None = VIEW_SIDE, exact: bool = False) -> Image.Image:
    """`image` scaled up so its longer side is at least `side` (exactly `side` with `exact`;
    None: as it is).

    Nearest-neighbour at a whole-number factor: a 32 px sample's pixels stay crisp squares, with
    no blur or ringing and nothing invented. Only an exact size that is not a multiple of the
    native one is reached with Lanczos (sharp, little aliasing) from the multiple below it.
    """
    longest = max(image.size)
    if side is None or longest >= side:
        return image
    factor = -(-side // longest) if not exact else max(1, side // longest)
    big = image.resize((image.width * factor, image.height * factor), Image.Resampling.NEAREST)
    if not exact or longest * factor == side:
        return big
    scale = side / longest
    return big.resize((round(image.width * scale), round(image.height * scale)),
                      Image.Resampling.LANCZOS)


def save_png(image: Image.Image, path: str | os.PathLike) -> Path:
    """Atomically save a PIL image as PNG."""
    import io

    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return atomic.write_bytes(path, buf.getvalue())


def save_gif(frames: Sequence[Image.Image], path: str | os.PathLike, fps: float = 4,
             loop: bool = True) -> Path:
    """Atomically save frames as an animated GIF."""
    import io

    if not frames:
        raise ValueError("no frames to save")
    buf = io.BytesIO()
    frames = [f.convert("RGB") for f in frames]
    frames[0].save(buf, format="GIF", save_all=True, append_images=list(frames[1:]),
                   duration=int(1000 / fps), loop=0 if loop else 1, optimize=False)
    return atomic.write_bytes(path, buf.getvalue())


def too_large_message(path: str | os.PathLike, size: tuple[int, int] | None = None) -> str:
    """The one line every command gives for an image over MAX_PIXELS."""
    limit = f"the limit of {MAX_PIXELS / 1e6:.3g} megapixels"
    has = f"has {size[0]} x {size[1]} pixels, over {limit}" if size else f"is over {limit}"
    return f"{path} {has}: shrink it first (e.g. to 4096 px on the long side)"


def open_image(path: str | os.PathLike) -> Image.Image:
    """Open a user's image file lazily (header only); ImageTooLarge above MAX_PIXELS.

    Use it as a context manager, like Image.open. Pillow's own warning for big images is
    replaced by this explicit limit, so no picture is refused with a traceback.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            img = Image.open(path)
        except Image.DecompressionBombError:
            raise ImageTooLarge(too_large_message(path)) from None
    if img.width * img.height > MAX_PIXELS:
        img.close()
        raise ImageTooLarge(too_large_message(path, img.size))
    return img

