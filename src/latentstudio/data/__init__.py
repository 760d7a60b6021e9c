"""Where images come from: `load_dataset(spec, ...)` turns a data spec into an ImageSet.

Specs: `shapes` (default, procedural), `shapes:N` (N images), `folder:PATH` or a plain directory,
`mnist`, `fashion-mnist`, `cifar10`, `cifar10:horse` (class filter), or a packed `data.npz`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from latentstudio.data.base import ImageSet, parse_size
from latentstudio.errors import UserError

__all__ = ["ImageSet", "DataOptions", "SOURCES", "load_dataset", "RESOLUTIONS"]

RESOLUTIONS = (28, 32, 64, 128)


@dataclass(frozen=True)
class DataOptions:
    """How a source should decode: target size, channels (None = the source's own), fitting."""

    resolution: int = 32
    channels: int | None = None
    fit: Literal["crop", "pad"] = "crop"
    seed: int = 0
    limit: int | None = None
    progress: bool = True
    height: int | None = None  # non-square images: their height (`resolution` is the width)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) in pixels."""
        return self.resolution, self.height or self.resolution


Loader = Callable[[str, DataOptions], ImageSet]
SOURCES: dict[str, Loader] = {}


def register_source(name: str) -> Callable[[Loader], Loader]:
    """Add a loader under `name` so `name` and `name:ARG` specs reach it."""

    def wrap(fn: Loader) -> Loader:
        SOURCES[name] = fn
        return fn

    return wrap


def _import_sources() -> None:
    # Imported for their @register_source side effect.
    from latentstudio.data import cifar, folder, mnist, packed, shapes  # noqa: F401


def load_dataset(
    spec: str = "shapes",
    resolution: int | str = 32,
    channels: int | None = None,
    fit: Literal["crop", "pad"] = "crop",
    seed: int = 0,
    limit: int | None = None,
    progress: bool = True,
) -> ImageSet:
    """Decode the images a data spec names, at `resolution` px (or "WIDTHxHEIGHT") and
    `channels` channels."""
    _import_sources()
    width, height = parse_size(resolution)
    if not (8 <= width <= 1024 and 8 <= height <= 1024):
        raise UserError(f"resolution {resolution} is out of range: use 8..1024 (e.g. 28, 32, 64, 128)")
    if channels not in (None, 1, 2, 3, 4):
        raise UserError(f"--channels must be 1, 3, or 2/4 (grey/colour with transparency), "
                        f"not {channels}")
    if fit not in ("crop", "pad"):
        raise UserError(f"fit must be 'crop' or 'pad', not {fit!r}")
    if limit is not None and limit <= 0:
        raise UserError(f"limit must be positive, not {limit}")
    opts = DataOptions(width, channels, fit, seed, limit, progress,
                       height if height != width else None)
    name, _, arg = spec.partition(":")
    if spec.lower().endswith(".npz"):
        images = SOURCES["packed"](spec, opts)
    elif name in SOURCES and name != "packed":
        if channels in (2, 4) and name != "folder":
            raise UserError(f"--channels {channels} keeps transparency, which {name} images do "
                            f"not have: use --channels {channels - 1}, or a folder of "
                            f"transparent PNGs")
        images = SOURCES[name](arg, opts)
    elif Path(spec).expanduser().exists() or spec.startswith(("/", "~", ".")) or "/" in spec:
        images = SOURCES["folder"](spec, opts)
    else:
        names = ", ".join(sorted(n for n in SOURCES if n != "packed"))
        raise UserError(
            f"unknown data spec {spec!r}: use one of {names}, folder:PATH, a directory, or a .npz pack"
        )
    images.spec = spec
    return images
