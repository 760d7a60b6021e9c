"""Latent walks: a smooth path through keyframes, rendered as a GIF, an MP4 or PNG frames.

`--steps S` is the number of frames per transition. An open walk through K keyframes has
(K - 1) * S + 1 frames and ends exactly on the last keyframe; a loop has K * S frames and its
last transition returns towards the first keyframe without repeating it, so the animation
repeats without a stutter.

`--easing` reparametrises time within each transition: `linear` moves at constant speed,
`smooth` (smoothstep, 3t^2 - 2t^3) and `cubic` (ease-in-out cubic, 4t^3 then mirrored) slow
down into and out of every keyframe, `cubic` more so. `--hold H` shows each keyframe H more
times, so the walk rests on it: H * K more frames for K keyframes.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import torch

from latentstudio.errors import UserError
from latentstudio.explore.animation import (
    ANIMATION_SUFFIXES,
    frame_size,
    output_kind,
    to_frames,
    write_animation,
)
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

Easing = Literal["linear", "smooth", "cubic"]
Progress = Callable[[int, int], None]  # (frames rendered, frames in all)


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    return t * t * (3 - 2 * t)


def _ease_in_out_cubic(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t < 0.5, 4 * t**3, 1 - (2 - 2 * t) ** 3 / 2)


EASINGS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "linear": lambda t: t, "smooth": _smoothstep, "cubic": _ease_in_out_cubic}


def frame_count(keys: int, steps: int, loop: bool = False, hold: int = 0) -> int:
    """Frames of a walk through `keys` keyframes with `steps` frames per transition, each
    keyframe shown `hold` extra times."""
    return (keys * steps if loop else (keys - 1) * steps + 1) + keys * hold


def hold_index(keys: int, steps: int, loop: bool = False, hold: int = 0) -> torch.Tensor:
    """For each frame of the held walk, the frame of the plain walk it shows (keyframe k is
    plain frame k * steps)."""
    repeats = torch.ones(frame_count(keys, steps, loop), dtype=torch.long)
    repeats[::steps] += hold
    return torch.repeat_interleave(torch.arange(len(repeats)), repeats)


def check_length(frames: int, side: int | None = None) -> None:
    """UserError when a walk has more frames, or frames of side x side more pixels, than allowed."""
    if frames > MAX_FRAMES:
        raise UserError(f"this walk would have {frames} frames; at most {MAX_FRAMES} per "
                        f"animation: lower --steps or use fewer keyframes")
    if side is not None and frames * side * side > MAX_PIXELS:
        raise UserError(f"{frames} frames of {side} x {side} px are more than {MAX_PIXELS / 1e6:.0f} "
                        f"megapixels per animation: lower --steps or --size")


def check_easing(easing: str, hold: int = 0) -> None:
    """UserError unless easing is known and hold is a whole number >= 0."""
    if easing not in EASINGS:
        raise UserError(f"--easing must be {', '.join(EASINGS)}, got {easing!r}")
    if isinstance(hold, bool) or not isinstance(hold, int) or hold < 0:
        raise UserError(f"--hold must be a whole number >= 0, got {hold!r}")


def walk(keys: torch.Tensor, steps: int, mode: Mode = "slerp", loop: bool = False,
         easing: Easing = "linear") -> torch.Tensor:
    """Latents (frames, D) along a path through keys (K, D); see the module docstring for counts.

    Each frame also belongs to a segment: frame f lies between keys f // steps and the next one.
    """
    if mode not in INTERPOLATORS:
        raise UserError(f"--mode must be slerp or lerp, got {mode!r}")
    check_easing(easing)
    if steps <= 0:
        raise UserError(f"--steps must be positive, got {steps}")
    if len(keys) < 2:
        raise UserError("a walk needs at least two keyframes, like --seeds 3,17")
    fn = INTERPOLATORS[mode]
    t = EASINGS[easing](torch.arange(steps, dtype=torch.float64) / steps)
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
                batch_size: int = 64, easing: Easing = "linear", hold: int = 0,
                progress: Progress | None = None) -> torch.Tensor:
    """Images (frames, C, H, W) in [-1, 1] of a walk. A CPPN run renders frames at `size`.

    Held frames are rendered once; `progress(done, total)` counts frames of the held walk.
    """
    check_easing(easing, hold)
    z = truncate(walk(torch.stack([k.z for k in keyframes]), steps, mode, loop, easing), truncation).float()
    labels = walk_labels([k.label for k in keyframes], steps, loop)
    index = hold_index(len(keyframes), steps, loop, hold)
    render = getattr(run.image_network, "render", None)
    out = []
    with torch.no_grad():
        for i in range(0, len(z), batch_size):
            y = labels[i:i + batch_size] if labels is not None else None
            if render is None or size is None:
                out.append(run.generate(z[i:i + batch_size], y, batch_size))
            else:
                y = y.to(run.device) if y is not None else None
                out.append(render(z[i:i + batch_size].to(run.device), size, size, y).float().cpu())
            if progress is not None:
                progress(int((index < i + len(out[-1])).sum()), len(index))
    return torch.cat(out)[index]


def write_walk(run: Run, keyframes: list[Keyframe], out: str | os.PathLike, steps: int = 60,
               mode: Mode = "slerp", loop: bool = False, fps: float = 24,
               truncation: float | None = None, size: int | str | None = None,
               easing: Easing = "linear", hold: int = 0, progress: Progress | None = None) -> Path:
    """Render a walk of a loaded run through keyframes to `out` (.gif, .mp4, .webm, .mov or a folder of PNG
    frames); returns `out`. What `interpolate` and the gallery's video panel both call."""
    kind = output_kind(out)
    check_easing(easing, hold)
    if len(keyframes) < 2:
        raise UserError("a walk needs at least two keyframes, like --seeds 3,17")
    native = max(run.model_config.size)  # frames are rendered at it (the longer side), then resized
    check_length(frame_count(len(keyframes), steps, loop, hold),
                 max(native, frame_size(native, kind, size)))
    images = walk_images(run, keyframes, steps, mode, loop, truncation,
                         size if isinstance(size, int) else None, easing=easing, hold=hold,
                         progress=progress)
    side = frame_size(max(images.shape[-2:]), kind, size)
    return write_animation(to_frames(images, side), out, fps)


def interpolate(run_path: str | os.PathLike, keys: str | list[str], out: str | os.PathLike,
                steps: int = 60, mode: Mode = "slerp", loop: bool = False, fps: float = 24,
                class_: int | str | None = None, truncation: float | None = None,
                size: int | str | None = None, checkpoint: str = "last", device: str = "cpu",
                easing: Easing = "linear", hold: int = 0) -> Path:
    """Render a walk through keyframes (seeds, seed ranges, latent .pt files, images to project)
    to `out` (.gif, .mp4, .webm, .mov, or a folder of PNG frames); returns `out`."""
    kind = output_kind(out)
    check_output(out, ANIMATION_SUFFIXES, folder_ok=True)
    if fps <= 0:
        raise UserError(f"--fps must be positive, got {fps}")
    if isinstance(size, int) and size <= 0:
        raise UserError(f"--size must be positive or 'native', got {size}")
    if steps <= 0:
        raise UserError(f"--steps must be positive, got {steps}")
    check_truncation(truncation)
    check_easing(easing, hold)
    keys = split_keys(keys) if isinstance(keys, str) else list(keys)
    if len(keys) < 2:
        raise UserError("a walk needs at least two keyframes, like --seeds 3,17")
    check_length(frame_count(len(keys), steps, loop, hold), size if isinstance(size, int) else None)
    run = load_run(run_path, device=device, checkpoint=checkpoint)
    native = max(run.model_config.size)  # before projecting any image keyframe
    check_length(frame_count(len(keys), steps, loop, hold), max(native, frame_size(native, kind, size)))
    return write_walk(run, resolve_keys(run, keys, class_), out, steps, mode, loop, fps,
                      truncation, size, easing, hold)
