"""Latent walks: a smooth path through keyframes, rendered as a GIF, an MP4 or PNG frames.

`--steps S` is the number of frames per transition. An open walk through K keyframes has
(K - 1) * S + 1 frames and ends exactly on the last keyframe; a loop has K * S frames and its
last transition returns towards the first keyframe without repeating it, so the animation
repeats without a stutter.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from latentstudio.errors import UserError
from latentstudio.explore.animation import frame_size, output_kind, to_frames, write_animation
from latentstudio.explore.latents import (
    INTERPOLATORS,
    Keyframe,
    Mode,
    check_output,
    resolve_keys,
    split_keys,
    truncate,
)
from latentstudio.explore.sampling import check_truncation
from latentstudio.runs import Run, load_run

# Frames are rendered and encoded in memory: about 3.5 minutes at 24 fps, and at most 2**30
# pixels in all (3 GB as RGB) whatever their size.
MAX_FRAMES = 5000
MAX_PIXELS = 2**30


def frame_count(keys: int, steps: int, loop: bool = False) -> int:
    """Frames of a walk through `keys` keyframes with `steps` frames per transition."""
    return keys * steps if loop else (keys - 1) * steps + 1


def check_length(frames: int, side: int | None = None) -> None:
    """UserError when a walk has more frames, or frames of side x side more pixels, than allowed."""
    if frames > MAX_FRAMES:
        raise UserError(f"this walk would have {frames} frames; at most {MAX_FRAMES} per "
                        f"animation: lower --steps or use fewer keyframes")
    if side is not None and frames * side * side > MAX_PIXELS:
        raise UserError(f"{frames} frames of {side} x {side} px are more than {MAX_PIXELS / 1e6:.0f} "
                        f"megapixels per animation: lower --steps or --size")


def walk(keys: torch.Tensor, steps: int, mode: Mode = "slerp", loop: bool = False) -> torch.Tensor:
    """Latents (frames, D) along a path through keys (K, D); see the module docstring for counts.

    Each frame also belongs to a segment: frame f lies between keys f // steps and the next one.
    """
    if mode not in INTERPOLATORS:
        raise UserError(f"--mode must be slerp or lerp, got {mode!r}")
    if steps <= 0:
        raise UserError(f"--steps must be positive, got {steps}")
    if len(keys) < 2:
        raise UserError("a walk needs at least two keyframes, like --seeds 3,17")
    fn = INTERPOLATORS[mode]
    t = torch.arange(steps, dtype=torch.float64) / steps
    pairs = len(keys) if loop else len(keys) - 1
    parts = [fn(keys[i], keys[(i + 1) % len(keys)], t) for i in range(pairs)]
    if not loop:
        parts.append(keys[-1:].to(parts[0].dtype))
    return torch.cat(parts)


def walk_labels(labels: list[int | None], steps: int, loop: bool = False) -> torch.Tensor | None:
    """Per-frame class of a walk: a transition between two classes switches at its midpoint
    (class is an input, not a point in the latent space)."""
    if labels[0] is None:
        return None
    out = []
    pairs = len(labels) if loop else len(labels) - 1
    for i in range(pairs):
        a, b = labels[i], labels[(i + 1) % len(labels)]
        out += [a if 2 * s < steps else b for s in range(steps)]
    if not loop:
        out.append(labels[-1])
    return torch.tensor(out, dtype=torch.long)


def walk_images(run: Run, keyframes: list[Keyframe], steps: int, mode: Mode = "slerp",
                loop: bool = False, truncation: float | None = None, size: int | None = None,
                batch_size: int = 64) -> torch.Tensor:
    """Images (frames, C, H, W) in [-1, 1] of a walk. A CPPN run renders frames at `size`."""
    z = truncate(walk(torch.stack([k.z for k in keyframes]), steps, mode, loop), truncation).float()
    labels = walk_labels([k.label for k in keyframes], steps, loop)
    render = getattr(run.image_network, "render", None)
    if render is None or size is None:
        return run.generate(z, labels, batch_size)
    out = []
    with torch.no_grad():
        for i in range(0, len(z), batch_size):
            y = labels[i:i + batch_size].to(run.device) if labels is not None else None
            out.append(render(z[i:i + batch_size].to(run.device), size, size, y).float().cpu())
    return torch.cat(out)


def interpolate(run_path: str | os.PathLike, keys: str | list[str], out: str | os.PathLike,
                steps: int = 60, mode: Mode = "slerp", loop: bool = False, fps: float = 24,
                class_: int | str | None = None, truncation: float | None = None,
                size: int | str | None = None, checkpoint: str = "last", device: str = "cpu") -> Path:
    """Render a walk through keyframes (seeds, latent .pt files, images to project) to `out`
    (.gif, .mp4, or a folder of PNG frames); returns `out`."""
    kind = output_kind(out)
    check_output(out, (".gif", ".mp4"), folder_ok=True)
    if fps <= 0:
        raise UserError(f"--fps must be positive, got {fps}")
    if isinstance(size, int) and size <= 0:
        raise UserError(f"--size must be positive or 'native', got {size}")
    if steps <= 0:
        raise UserError(f"--steps must be positive, got {steps}")
    check_truncation(truncation)
    keys = split_keys(keys) if isinstance(keys, str) else list(keys)
    if len(keys) < 2:
        raise UserError("a walk needs at least two keyframes, like --seeds 3,17")
    check_length(frame_count(len(keys), steps, loop), size if isinstance(size, int) else None)
    run = load_run(run_path, device=device, checkpoint=checkpoint)
    native = max(run.model_config.size)  # frames are rendered at it (the longer side), then resized
    check_length(frame_count(len(keys), steps, loop), max(native, frame_size(native, kind, size)))
    keyframes = resolve_keys(run, keys, class_)
    images = walk_images(run, keyframes, steps, mode, loop, truncation,
                         size if isinstance(size, int) else None)
    side = frame_size(max(images.shape[-2:]), kind, size)
    return write_animation(to_frames(images, side), out, fps)
