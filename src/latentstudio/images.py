"""Converting between model tensors and pictures: uint8, grids, PNG files, GIFs.

Images with an even channel count carry straight (not premultiplied) alpha as their last
channel: 2 = grey + alpha (LA), 4 = RGBA. Single pictures keep it (RGBA/LA PNGs); grids are
drawn on a checkerboard so the transparency shows.
"""

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


PIL_MODES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
CHECKER = (204, 255)  # the light greys image editors show behind transparent pixels


def has_alpha(channels: int) -> bool:
    """Whether images with this many channels carry alpha (LA or RGBA)."""
    return channels in (2, 4)


def to_pil(image: torch.Tensor) -> Image.Image:
    """One image (C, H, W), uint8 or float in [-1, 1], as a PIL image (L, LA, RGB or RGBA)."""
    if image.dtype != torch.uint8:
        image = to_uint8(image[None])[0]
    arr = image.cpu().permute(1, 2, 0).numpy()
    if arr.shape[2] == 1:
        return Image.fromarray(arr[:, :, 0], "L")
    return Image.fromarray(arr, PIL_MODES[arr.shape[2]])


def checkerboard(height: int, width: int, square: int) -> torch.Tensor:
    """A (height, width) uint8 checkerboard of CHECKER greys with `square`-pixel squares."""
    ys = torch.arange(height)[:, None] // square
    xs = torch.arange(width)[None, :] // square
    return torch.where((ys + xs) % 2 == 0, CHECKER[1], CHECKER[0]).to(torch.uint8)


def composite(images: torch.Tensor, background: torch.Tensor | int = 255) -> torch.Tensor:
    """uint8 images (N, C, H, W) with alpha (C = 2 or 4) over `background` (a grey level or an
    (H, W) uint8 plane), without the alpha channel; images without alpha are returned as they are."""
    if not has_alpha(images.shape[1]):
        return images
    colour, alpha = images[:, :-1].float(), images[:, -1:].float() / 255
    back = background.float() if isinstance(background, torch.Tensor) else float(background)
    return (colour * alpha + back * (1 - alpha)).round_().clamp_(0, 255).to(torch.uint8)


def on_checkerboard(images: torch.Tensor) -> torch.Tensor:
    """uint8 images with alpha composited on a checkerboard (squares of 1/8 of the side, so each
    tile shows 8 x 8 of them); images without alpha unchanged."""
    h, w = images.shape[-2:]
    return composite(images, checkerboard(h, w, max(1, min(h, w) // 8)))


def make_grid(images: torch.Tensor, nrow: int | None = None, padding: int = 2,
              pad_value: int = 255) -> Image.Image:
    """Tile (N, C, H, W) images into one picture with `nrow` images per row (default: square);
    images with alpha are shown on a checkerboard (the grid itself is L or RGB)."""
    if images.dtype != torch.uint8:
        images = to_uint8(images)
    images = on_checkerboard(images.cpu())
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
    """Atomically save frames as an animated GIF (see encode_gif)."""
    return atomic.write_bytes(path, encode_gif(frames, fps, loop))


def encode_gif(frames: Sequence[Image.Image], fps: float = 4, loop: bool = True) -> bytes:
    """Frames as an animated GIF; frames with alpha keep it as GIF's on/off transparency (alpha
    below half is transparent)."""
    import io

    if not frames:
        raise ValueError("no frames to save")
    buf = io.BytesIO()
    alpha = any("A" in f.getbands() for f in frames)
    frames = [_gif_frame(f) if alpha else f.convert("RGB") for f in frames]
    extra = {"transparency": GIF_CLEAR, "disposal": 2} if alpha else {}
    frames[0].save(buf, format="GIF", save_all=True, append_images=list(frames[1:]),
                   duration=int(1000 / fps), loop=0 if loop else 1, optimize=False, **extra)
    return buf.getvalue()


GIF_CLEAR = 255  # the palette index of transparent pixels in GIFs with alpha


def _gif_frame(frame: Image.Image) -> Image.Image:
    """A frame as a P image of at most 255 colours, with index GIF_CLEAR where alpha < 128."""
    rgba = frame.convert("RGBA")
    pal = rgba.convert("RGB").quantize(GIF_CLEAR)
    palette = pal.getpalette() or []
    pal.putpalette(palette[:3 * GIF_CLEAR] + [0] * (3 * 256 - len(palette[:3 * GIF_CLEAR])))
    clear = rgba.getchannel("A").point(lambda a: 255 if a < 128 else 0)
    pal.paste(GIF_CLEAR, mask=clear)
    return pal


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

