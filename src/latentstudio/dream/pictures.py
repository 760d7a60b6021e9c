"""Dreaming on picture files: modes in and out, zooming dream videos, PNG/GIF/MP4 output.

A picture keeps its size and mode: grayscale is dreamed as gray RGB and returned as luminance
(and colour through a gray network as its luminance, under the original colours), an alpha
channel is carried through untouched, other modes (P, CMYK, ...) are converted back.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from latentstudio import images
from latentstudio.devices import resolve_device
from latentstudio.dream.deepdream import DreamConfig, DreamResult, dream, luminance
from latentstudio.dream.networks import LayerObjective
from latentstudio.errors import UserError

VIDEO_SUFFIXES = (".gif", ".mp4")


GRAY_MODES = ("L", "LA", "1", "I", "I;16", "F")


def picture_to_tensor(picture: Image.Image, device: torch.device | str = "cpu") -> torch.Tensor:
    """A PIL image as (1, C, H, W) in [-1, 1]: C = 1 for gray modes, else 3 (RGB)."""
    arr = np.asarray(picture.convert("L" if picture.mode in GRAY_MODES else "RGB"))
    x = torch.from_numpy(arr.copy()).to(device)
    x = x[None, None] if x.dim() == 2 else x.permute(2, 0, 1)[None]
    return images.from_uint8(x).contiguous()


def tensor_to_picture(x: torch.Tensor, like: Image.Image) -> Image.Image:
    """(1, C, H, W) in [-1, 1] as a picture in `like`'s mode, with `like`'s alpha channel."""
    gray = like.mode in GRAY_MODES
    if gray and x.shape[1] == 3:
        x = luminance(x)
    if not gray and x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    out = images.to_pil(x[0])
    if "A" in like.getbands():
        out.putalpha(like.getchannel("A"))
    if out.mode == like.mode:
        return out
    try:
        return out.convert(like.mode)
    except (ValueError, OSError):  # a mode PIL cannot convert to from RGB/L
        return out


def dream_image(x: torch.Tensor, objective: LayerObjective, config: DreamConfig,
                progress: bool = False) -> DreamResult:
    """`dream` for an image of 1 or 3 channels whatever the network reads; keeps x's channels.

    A gray image goes through a colour network as gray RGB and comes back as its luminance; a
    colour image goes through a gray network (a run trained on gray data) as its luminance,
    and the dreamed luminance is put back under the original colours.
    """
    want, have = objective.net.in_channels, x.shape[1]
    if want == have:
        return dream(x, objective, config, progress)
    if want in (2, 4) and have == want - 1:  # a run trained with alpha: the picture is opaque
        result = dream(torch.cat([x, torch.ones_like(x[:, :1])], 1), objective, config, progress)
        result.image = result.image[:, :have]
        return result
    if want == 3 and have == 1:
        result = dream(x.expand(-1, 3, -1, -1).contiguous(), objective, config, progress)
        result.image = luminance(result.image)
        return result
    if want == 1 and have == 3:
        gray = luminance(x)
        result = dream(gray, objective, config, progress)
        result.image = (x + (result.image - gray)).clamp_(-1, 1)
        return result
    raise UserError(f"{objective.net.name} reads {want}-channel images, not {have}-channel ones")


def dream_picture(picture: Image.Image, objective: LayerObjective, config: DreamConfig,
                  progress: bool = False) -> tuple[Image.Image, DreamResult]:
    """Dream on a PIL image; the result has the picture's size and mode."""
    x = picture_to_tensor(picture, objective.net.device)
    result = dream_image(x, objective, config, progress=progress)
    return tensor_to_picture(result.image, picture), result


def zoom(x: torch.Tensor, factor: float) -> torch.Tensor:
    """Magnify the centre of (1, C, H, W) by `factor`, keeping the size."""
    h, w = x.shape[2:]
    ch, cw = max(1, round(h / factor)), max(1, round(w / factor))
    y0, x0 = (h - ch) // 2, (w - cw) // 2
    crop = x[:, :, y0:y0 + ch, x0:x0 + cw]
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)


def dream_zoom(picture: Image.Image, objective: LayerObjective, config: DreamConfig,
               frames: int, factor: float, progress: bool = False) -> list[Image.Image]:
    """A zooming dream: each frame dreams on the previous one magnified by `factor`."""
    from tqdm import tqdm

    x = picture_to_tensor(picture, objective.net.device)
    out = []
    for i in tqdm(range(frames), desc="frames", disable=not progress):
        x = dream_image(x, objective, replace(config, seed=config.seed + i)).image
        out.append(tensor_to_picture(x, picture))
        x = zoom(x, factor)
    return out


def write_pictures(frames: list[Image.Image], path: str | os.PathLike, fps: float = 12) -> Path:
    """Save one frame as PNG (or whatever the suffix says) or several as an animated GIF or MP4."""
    path = Path(path)
    suffix = path.suffix.lower()
    if len(frames) > 1 and suffix not in VIDEO_SUFFIXES:
        raise UserError(f"--frames needs a .gif or .mp4 output, got {path.name}")
    if suffix == ".mp4":
        return _write_mp4(frames, path, fps)
    if suffix == ".gif":
        return images.save_gif(frames, path, fps=fps)
    if suffix == ".png":
        return images.save_png(frames[0], path)
    import io

    from latentstudio import atomic

    buf = io.BytesIO()
    try:
        frames[0].save(buf, format=Image.registered_extensions().get(suffix))
    except (KeyError, ValueError, OSError) as e:
        raise UserError(f"cannot write {path.name}: use .png, .jpg, .gif or .mp4 ({e})") from e
    return atomic.write_bytes(path, buf.getvalue())


def _write_mp4(frames: list[Image.Image], path: Path, fps: float) -> Path:
    try:
        import imageio_ffmpeg
    except ImportError as e:
        raise UserError("writing MP4 needs imageio-ffmpeg: pip install 'latentstudio[video]', "
                        "or write a .gif") from e
    rgb = [np.asarray(f.convert("RGB")) for f in frames]
    h, w = (s - s % 2 for s in rgb[0].shape[:2])  # H.264 in yuv420p needs even sides
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=fps, macro_block_size=1,
                                             quality=8)
        writer.send(None)
        for arr in rgb:
            writer.send(np.ascontiguousarray(arr[:h, :w]))
        writer.close()
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def load_picture(path: str | os.PathLike) -> Image.Image:
    """An image file, EXIF orientation applied; UserError if missing, unreadable or over
    images.MAX_PIXELS."""
    try:
        with images.open_image(path) as img:
            img.load()
            return ImageOps.exif_transpose(img)
    except FileNotFoundError as e:
        raise UserError(f"input image not found: {path}") from e
    except OSError as e:
        raise UserError(f"cannot read image {path}: {e}") from e


def dream_file(source: str | os.PathLike, out: str | os.PathLike, net: str = "lite0",
               config: DreamConfig | None = None, weights: str | None = None,
               device: str = "auto", frames: int = 1, zoom_factor: float = 1.02, fps: float = 12,
               progress: bool = True) -> Path:
    """Dream on the image file `source` and write `out` (a picture, or a GIF/MP4 when frames > 1)."""
    from latentstudio.dream.networks import load_network

    config = config or DreamConfig()
    if frames < 1:
        raise UserError(f"--frames must be at least 1, got {frames}")
    if frames > 1 and Path(out).suffix.lower() not in VIDEO_SUFFIXES:
        raise UserError(f"--frames {frames} needs a .gif or .mp4 --out, got {Path(out).name}")
    if not (math.isfinite(zoom_factor) and zoom_factor > 0):
        raise UserError(f"--zoom must be a finite number above 0, got {zoom_factor}")
    if not (math.isfinite(fps) and fps > 0):
        raise UserError(f"--fps must be a finite number above 0, got {fps}")
    picture = load_picture(source)
    objective = LayerObjective(load_network(net, weights, resolve_device(device)),
                               config.layer, config.channels, config.objective)
    if frames == 1:
        result, _ = dream_picture(picture, objective, config, progress=progress)
        return write_pictures([result], out, fps)
    return write_pictures(dream_zoom(picture, objective, config, frames, zoom_factor, progress),
                          out, fps)
