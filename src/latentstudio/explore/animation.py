"""Writing a sequence of frames as a GIF, an MP4 (through imageio-ffmpeg) or a folder of PNGs."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.images import VIEW_SIDE, enlarge, save_gif, save_png, to_pil

VIDEO_SUFFIXES = (".mp4",)
ANIMATION_SUFFIXES = (".gif", *VIDEO_SUFFIXES)
MIN_VIDEO_SIDE = VIEW_SIDE  # players blur or refuse tiny videos; 32 px frames are scaled up


def output_kind(out: str | os.PathLike) -> str:
    """'gif', 'mp4' or 'folder' for an --out path."""
    out = Path(out)
    if str(out).endswith(("/", os.sep)) or out.is_dir() or not out.suffix:
        return "folder"
    if out.suffix.lower() in ANIMATION_SUFFIXES:
        return out.suffix.lower()[1:]
    raise UserError(f"--out {out}: use a .gif or .mp4 file, or a folder/ for one PNG per frame")


def frame_size(native: int, kind: str, size: int | str | None) -> int:
    """The side of written frames: --size when given ("native": the model's pixels); GIFs and
    MP4s are at least VIEW_SIDE (a whole multiple of the native side); a folder of PNG frames
    keeps the native pixels. MP4 sides are a multiple of 16 (non-square: the longer one; the other
    is made even)."""
    if size == "native":
        side = native
    elif size is not None:
        side = int(size)
    elif kind in ("mp4", "gif"):
        side = native * -(-VIEW_SIDE // native) if native < VIEW_SIDE else native
    else:
        return native
    return -(-side // 16) * 16 if kind == "mp4" else side


def to_frames(images: torch.Tensor, side: int) -> list[Image.Image]:
    """Images in [-1, 1] (F, C, H, W) as PIL frames whose longer side is `side` (images.enlarge
    when larger, Lanczos when smaller)."""
    frames = [to_pil(img) for img in images]
    if frames and max(frames[0].size) < side:
        frames = [enlarge(f, side, exact=True) for f in frames]
    elif frames and max(frames[0].size) != side:
        w, h = frames[0].size
        shape = (max(1, round(w * side / max(w, h))), max(1, round(h * side / max(w, h))))
        frames = [f.resize(shape, Image.LANCZOS) for f in frames]
    return frames


def write_animation(frames: list[Image.Image], out: str | os.PathLike, fps: float = 24) -> Path:
    """Write frames as .gif, .mp4 or numbered PNGs in a folder; returns what was written."""
    out = Path(out)
    kind = output_kind(out)
    if fps <= 0:
        raise UserError(f"--fps must be positive, got {fps}")
    try:
        if kind == "folder":
            out.mkdir(parents=True, exist_ok=True)
            for i, frame in enumerate(frames):
                save_png(frame, out / f"frame_{i:05d}.png")
        elif kind == "gif":
            save_gif(frames, out, fps=fps, loop=True)
        else:
            _write_video(frames, out, fps)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return out


def _write_video(frames: list[Image.Image], out: Path, fps: float) -> None:
    try:
        import imageio_ffmpeg
    except ImportError:
        raise UserError("writing MP4 needs imageio-ffmpeg (a latentstudio dependency that is "
                        "missing here): pip install imageio-ffmpeg, or write a .gif instead") from None
    w, h = frames[0].size
    if w % 2 or h % 2:  # non-square frames: H.264 in yuv420p needs even sides
        w, h = w + w % 2, h + h % 2
        frames = [f.resize((w, h), Image.LANCZOS) for f in frames]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=fps, quality=8, macro_block_size=2,
                                             ffmpeg_log_level="error")
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGB"))))
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
