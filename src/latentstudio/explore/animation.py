"""Writing a sequence of frames as a GIF, an MP4 (through imageio-ffmpeg) or a folder of PNGs.

Frames with alpha keep it in PNGs, in GIFs (on/off), in WEBM (VP9 yuva420p) and in MOV
(ProRes 4444); MP4 has no alpha, so they are composited on white there.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.images import VIEW_SIDE, enlarge, save_gif, save_png, to_pil

VIDEO_SUFFIXES = (".mp4", ".webm", ".mov")
ANIMATION_SUFFIXES = (".gif", *VIDEO_SUFFIXES)
MIN_VIDEO_SIDE = VIEW_SIDE  # players blur or refuse tiny videos; 32 px frames are scaled up


def output_kind(out: str | os.PathLike) -> str:
    """'gif', 'mp4', 'webm', 'mov' or 'folder' for an --out path."""
    out = Path(out)
    if str(out).endswith(("/", os.sep)) or out.is_dir() or not out.suffix:
        return "folder"
    if out.suffix.lower() in ANIMATION_SUFFIXES:
        return out.suffix.lower()[1:]
    raise UserError(f"--out {out}: use a .gif, .mp4, .webm or .mov file (WEBM and MOV keep "
                    "transparency), or a folder/ for one PNG per frame")


def frame_size(native: int, kind: str, size: int | str | None) -> int:
    """The side of written frames: --size when given ("native": the model's pixels); GIFs and
    MP4s are at least VIEW_SIDE (a whole multiple of the native side); a folder of PNG frames
    keeps the native pixels. MP4 sides are a multiple of 16 (non-square: the longer one; the other
    is made even)."""
    if size == "native":
        side = native
    elif size is not None:
        side = int(size)
    elif kind != "folder":
        side = native * -(-VIEW_SIDE // native) if native < VIEW_SIDE else native
    else:
        return native
    return -(-side // 16) * 16 if kind in ("mp4", "webm", "mov") else side


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
    alpha = any("A" in f.getbands() for f in frames)
    kind = out.suffix.lower()
    if alpha and kind == ".mp4":
        print(f"note: MP4 has no transparency: {out.name}'s frames are composited on white "
              "(.webm, .mov, .gif or a folder/ of PNGs keep it)", file=sys.stderr)
        frames = [_on_white(f) for f in frames]
        alpha = False
    options = _video_options(kind, alpha)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.stem}.", suffix=out.suffix, dir=out.parent)
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(tmp, (w, h), fps=fps, macro_block_size=2,
                                             ffmpeg_log_level="error", **options)
        writer.send(None)
        for frame in frames:
            writer.send(np.ascontiguousarray(np.asarray(frame.convert("RGBA" if alpha else "RGB"))))
        writer.close()
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _on_white(frame: Image.Image) -> Image.Image:
    if "A" not in frame.getbands():
        return frame
    white = Image.new("RGBA", frame.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, frame.convert("RGBA")).convert("RGB")


def _video_options(kind: str, alpha: bool) -> dict:
    """imageio_ffmpeg.write_frames keywords for a .mp4, .webm or .mov, with or without alpha."""
    if kind == ".webm":  # VP9 is the codec browsers play with alpha (yuva420p)
        return {"codec": "libvpx-vp9", "quality": None, "pix_fmt_in": "rgba" if alpha else "rgb24",
                "pix_fmt_out": "yuva420p" if alpha else "yuv420p",
                "output_params": ["-crf", "24", "-b:v", "0", "-row-mt", "1"]}
    if kind == ".mov":  # ProRes 4444 keeps alpha; 422 HQ without
        return {"codec": "prores_ks", "quality": None, "pix_fmt_in": "rgba" if alpha else "rgb24",
                "pix_fmt_out": "yuva444p10le" if alpha else "yuv422p10le",
                "output_params": ["-profile:v", "4444" if alpha else "3"]}
    return {"quality": 8}
