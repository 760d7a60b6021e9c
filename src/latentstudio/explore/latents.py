"""Latent vectors as things a user handles: interpolation maths, truncation, saved latent files,
and keyframes given as seeds, saved latents or images to project.

A saved latent is a torch file {"z": (latent_dim,) tensor, "label": int or None, "run": str}.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from latentstudio import atomic
from latentstudio.errors import UserError
from latentstudio.explore.seeds import expand_ranges, parse_seeds  # noqa: F401 (parse_seeds: re-exported)

if TYPE_CHECKING:
    from latentstudio.runs import Run

Mode = Literal["slerp", "lerp"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif", ".tif", ".tiff")


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Straight-line interpolation; t (T,) gives (T, D) for a, b of shape (D,)."""
    t = torch.as_tensor(t, dtype=a.dtype).reshape(-1, 1)
    return a[None] * (1 - t) + b[None] * t


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents).

    Gaussian latents live near a sphere of radius ~sqrt(D); a straight line between two of them
    passes through the improbable interior (its midpoint has norm ~sqrt(D/2)), an arc does not.
    Falls back to lerp when a and b are (anti)parallel, where the arc is undefined.
    """
    t = torch.as_tensor(t, dtype=torch.float64).reshape(-1, 1)
    a64, b64 = a.double(), b.double()
    cos = torch.dot(a64, b64) / (a64.norm() * b64.norm()).clamp_min(1e-12)
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    if torch.sin(omega).abs() < 1e-6:
        return lerp(a64, b64, t).to(a.dtype)
    out = (torch.sin((1 - t) * omega) * a64[None] + torch.sin(t * omega) * b64[None]) / torch.sin(omega)
    return out.to(a.dtype)


INTERPOLATORS = {"slerp": slerp, "lerp": lerp}


def truncate(z: torch.Tensor, psi: float | None, mean: torch.Tensor | None = None) -> torch.Tensor:
    """The truncation trick: pull latents towards the mean latent (0 for N(0, I)) by psi."""
    if psi is None:
        return z
    if psi < 0:
        raise UserError(f"--truncation must be >= 0 (1 = no change, 0.7 = typical), got {psi}")
    mean = torch.zeros_like(z) if mean is None else mean.to(z)
    return mean + psi * (z - mean)


def latent_dim_of(run: Run) -> int:
    """The run's latent size, or a UserError when its model has no latent space."""
    dim = getattr(run.model_config, "latent_dim", 0)
    if not dim:
        raise UserError(f"run {run.path} ({run.config.model}) has no latent space to explore")
    return int(dim)


@dataclass
class Keyframe:
    """One point of a walk: a latent (D,), its class for conditional models, where it came from."""

    z: torch.Tensor
    label: int | None
    source: str


def save_latent(path: str | os.PathLike, z: torch.Tensor, label: int | None = None,
                run: str = "") -> Path:
    """Write a latent file usable as a keyframe or `sample` input."""
    try:
        return atomic.save_torch(path, {"z": z.detach().reshape(-1).float().cpu(),
                                        "label": None if label is None else int(label),
                                        "run": str(run)})
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def load_latent(path: str | os.PathLike, latent_dim: int | None = None) -> Keyframe:
    """A saved latent file, checked against the run's latent size."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"latent file {path} does not exist")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
        z = payload["z"].float().reshape(-1)
        label = payload.get("label")
    except Exception:
        raise UserError(f"{path} is not a latentstudio latent file (a .pt with a 'z' tensor)") from None
    if latent_dim is not None and z.numel() != latent_dim:
        raise UserError(f"{path} holds a {z.numel()}-d latent, but this run's latents are {latent_dim}-d")
    return Keyframe(z, None if label is None else int(label), str(path))


def split_keys(text: str) -> list[str]:
    """A comma-separated keyframe list: seeds, seed ranges (10-20), latent .pt files and image
    files, mixed; ranges come back written out as seeds."""
    keys = [s.strip() for s in text.split(",")]
    if not all(keys):
        raise UserError(f"empty entry in {text!r}; separate keyframes with commas, like 3,17,walk.pt")
    return expand_ranges(keys)


def resolve_keys(run: Run, keys: list[str], class_: int | str | None = None,
                 project_steps: int = 300) -> list[Keyframe]:
    """Keyframes from seeds ('17'), latent files ('a.pt') and images to project ('photo.png').

    Seeds draw the same latent as `sample --seed S` draws for its first image. A conditional
    model's seeds and images take `class_` (default: the first class); latent files keep theirs.
    """
    dim = latent_dim_of(run)
    default_label = None
    if run.model_config.num_classes:
        default_label = int(run.labels_for(1, class_ if class_ is not None else 0)[0])
    elif class_ is not None:
        run.labels_for(1, class_)  # raises the "not conditional" error
    out = []
    for key in keys:
        path = Path(key)
        if key.isdigit():
            out.append(Keyframe(run.latents(1, int(key))[0], default_label, f"seed {key}"))
        elif path.suffix.lower() == ".pt":
            frame = load_latent(path, dim)
            if run.model_config.num_classes and frame.label is None:
                frame.label = default_label
            elif not run.model_config.num_classes:
                frame.label = None
            out.append(frame)
        elif path.suffix.lower() in IMAGE_SUFFIXES:
            from latentstudio.explore.project import load_target, project

            result = project(run, load_target(run, path), label=default_label if class_ is not None else None,
                             steps=project_steps)
            out.append(Keyframe(result.z, result.label, str(path)))
        else:
            raise UserError(f"keyframe {key!r} is neither a seed (a whole number >= 0), a latent .pt "
                            f"file nor an image ({', '.join(IMAGE_SUFFIXES)})")
    return out


def check_output(out: str | os.PathLike, suffixes: tuple[str, ...] = (), folder_ok: bool = False,
                 flag: str = "--out") -> Path:
    """Fail early, before any work, when `out` has the wrong kind or cannot be written."""
    out = Path(out)
    is_folder = folder_ok and (str(out).endswith(("/", os.sep)) or out.is_dir() or not out.suffix)
    if not is_folder and suffixes and out.suffix.lower() not in suffixes:
        kinds = " or ".join(suffixes) + (" file, or a folder/" if folder_ok else " file")
        raise UserError(f"{flag} {out}: expected a {kinds}")
    if not is_folder and out.is_dir():
        raise UserError(f"{flag} {out} is a folder; give a file name")
    target = out if is_folder else out.parent
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    if not os.access(target, os.W_OK):
        raise UserError(f"cannot write {out}: {target} is not writable")
    return out
