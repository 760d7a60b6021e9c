"""Packed datasets: one uint8 .npz with decoded images, labels, class names and metadata.

`pack_dataset` decodes any data spec once and writes a pack; `--data data.npz` reads it back
without touching the original files. The downloadable sources keep their decoded cache in the
same format. Entries: `images` (N, C, H, W) uint8, `labels` int64 (absent without labels),
`class_names` str, and `meta`, a JSON string (format, spec, resolution, channels, fingerprint,
latentstudio version).
"""

from __future__ import annotations

import json
import os
import sys
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from latentstudio import __version__
from latentstudio.data import DataOptions, load_dataset, register_source
from latentstudio.data.base import ImageSet, fit_tensor, size_text
from latentstudio.data.download import convert_channels, fit_images, partial_file, resize_images
from latentstudio.data.folder import NEUTRAL
from latentstudio.errors import UserError
from latentstudio.images import composite, has_alpha

FORMAT = "latentstudio-pack"
FORMAT_VERSION = 1


def save_pack(images: ImageSet, path: str | os.PathLike, meta: dict[str, Any] | None = None,
              compress: bool = True) -> Path:
    """Atomically write `images` as a pack; `meta` adds to the metadata. Returns the path."""
    path = Path(path).expanduser()
    info = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "spec": images.spec,
        "count": len(images),
        "resolution": images.resolution,
        "channels": images.channels,
        "class_names": list(images.class_names),
        "fingerprint": images.fingerprint(),
        "latentstudio_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **(meta or {}),
    }
    arrays = {
        "images": images.images.contiguous().numpy(),
        "class_names": np.array(list(images.class_names), dtype=str),
        "meta": np.array(json.dumps(info)),
    }
    if images.labels is not None:
        arrays["labels"] = images.labels.to(torch.int64).numpy()
    with partial_file(path) as part, open(part, "wb") as f:
        # Streamed to a file, not a buffer: packs can be several GB.
        (np.savez_compressed if compress else np.savez)(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    return path


def _rebuild_hint(path: Path) -> str:
    return f"re-create it with `latentstudio pack SPEC --out {path}`"


def read_pack(path: str | os.PathLike) -> tuple[ImageSet, dict[str, Any]]:
    """The ImageSet in a pack and its metadata; a damaged or foreign file is a UserError."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise UserError(f"no pack at {path}: check the path, or make one with "
                        f"`latentstudio pack SPEC --out {path}`")
    try:
        with np.load(path, allow_pickle=False) as npz:
            if "meta" not in npz.files or "images" not in npz.files:
                held = ", ".join(npz.files) or "nothing"
                raise UserError(f"{path} is a .npz but not a latentstudio pack (it holds {held}): "
                                f"make a pack with `latentstudio pack SPEC --out {path}`")
            meta = json.loads(str(npz["meta"]))
            images = npz["images"]
            labels = npz["labels"] if "labels" in npz.files else None
            names = [str(n) for n in npz["class_names"]] if "class_names" in npz.files else []
    except UserError:
        raise
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as e:
        raise UserError(f"cannot read {path} ({e}): the file is damaged or not a .npz pack; "
                        f"{_rebuild_hint(path)}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise UserError(f"{path} is not a latentstudio pack (unknown format): {_rebuild_hint(path)}")
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise UserError(f"{path} is a pack of a newer format (version {meta['format_version']}): "
                        f"upgrade latentstudio to read it")
    if images.dtype != np.uint8 or images.ndim != 4 or (labels is not None and len(labels) != len(images)):
        raise UserError(f"{path} holds malformed arrays (images {images.dtype} {images.shape}): "
                        f"{_rebuild_hint(path)}")
    pack = ImageSet(torch.from_numpy(images),
                    None if labels is None else torch.from_numpy(labels.astype(np.int64)),
                    names, str(meta.get("spec", "")))
    if meta.get("fingerprint") and pack.fingerprint() != meta["fingerprint"]:
        raise UserError(f"{path} is damaged (its images do not match the fingerprint recorded "
                        f"when it was packed): {_rebuild_hint(path)}")
    return pack, meta


def pack_dataset(spec: str, out: str | os.PathLike, resolution: int = 32,
                 channels: int | None = None, fit: Literal["crop", "pad"] = "crop",
                 seed: int = 0, limit: int | None = None, progress: bool = True,
                 compress: bool = True) -> tuple[Path, ImageSet]:
    """Decode `spec` once at `resolution`/`channels` and write it as a pack at `out`."""
    out = Path(out).expanduser()
    if out.suffix.lower() != ".npz":
        raise UserError(f"the pack file must end in .npz so --data recognises it, not {out.name!r}")
    if out.is_dir():
        raise UserError(f"{out} is a folder: give a file name such as {out / 'data.npz'}")
    blocked = next((p for p in out.parents if p.exists() and not p.is_dir()), None)
    if blocked is not None:
        raise UserError(f"cannot write {out}: {blocked} is a file, not a folder")
    images = load_dataset(spec, resolution, channels, fit, seed, limit, progress)
    images.spec = spec
    try:
        path = save_pack(images, out, {"fit": fit, "seed": seed, "limit": limit}, compress=compress)
    except OSError as e:  # a read-only folder, a full disk
        raise UserError(f"cannot write {out}: {e.strerror or e}") from None
    return path, images


@register_source("packed")
def load_packed(arg: str, opts: DataOptions) -> ImageSet:
    """A pack file, resized or converted (with a note) if asked for another size or channels."""
    pack, meta = read_pack(arg)
    if opts.limit is not None:
        pack = pack.subset(torch.arange(min(opts.limit, len(pack))))
    channels = opts.channels or pack.channels
    if (opts.size, channels) != (pack.size, pack.channels):
        if has_alpha(channels) and not has_alpha(pack.channels):
            raise UserError(f"{Path(arg).name} holds {pack.channels}-channel images without "
                            f"transparency: use --channels {pack.channels}, or pack the folder "
                            f"again with --channels {channels} to keep its transparency")
        print(f"note: {Path(arg).name} holds {size_text(*pack.size)} px {pack.channels}-channel "
              f"images; converting to {size_text(*opts.size)} px {channels}-channel (pack at that "
              "size to skip this)", file=sys.stderr)
        images = convert_alpha(pack.images, channels)
        if opts.height is None and pack.size[0] == pack.size[1]:
            pack.images = resize_with_alpha(images, opts.resolution) if has_alpha(channels) else \
                fit_images(images, opts.resolution, channels)
        else:  # to another aspect ratio: cropped or padded as --fit says
            pack.images = fit_tensor(convert_channels(images, channels), *opts.size, opts.fit)
    return pack


def resize_with_alpha(images: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
    """uint8 images with alpha resized with their colour premultiplied, so the colour under clear
    pixels does not bleed into the edges; clear pixels come out NEUTRAL."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = torch.empty((*images.shape[:2], resolution, resolution), dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk]
        alpha = x[:, -1:].float() / 255
        premultiplied = (x[:, :-1].float() * alpha).round_().to(torch.uint8)
        small = resize_images(torch.cat([premultiplied, x[:, -1:]], dim=1), resolution)
        a = small[:, -1:].float() / 255
        colour = torch.where(a > 0, small[:, :-1].float() / a.clamp(min=1 / 255), float(NEUTRAL))
        out[i:i + chunk, :-1] = colour.round_().clamp_(0, 255).to(torch.uint8)
        out[i:i + chunk, -1:] = small[:, -1:]
    return out


def convert_alpha(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 images with alpha (LA or RGBA) as `channels` channels: 1 or 3 composite on white,
    2 <-> 4 converts the colour and keeps the alpha. Images without alpha are returned as they are."""
    have = images.shape[1]
    if not has_alpha(have) or have == channels:
        return images
    if not has_alpha(channels):
        return composite(images, 255)  # 1 or 3 channels; fit_images converts between those
    colour = fit_images(images[:, :-1], images.shape[-1], channels - 1)
    return torch.cat([colour, images[:, -1:]], dim=1)
