"""Shared machinery of the downloadable datasets (MNIST, Fashion-MNIST, CIFAR-10).

Fetching: each file is tried from a list of mirrors, streamed to `NAME.part` beside its target
with a progress bar, checked against its published hash and only then renamed into place, so the
cache never holds a half-written or unverified file. Mirrors can be replaced with
`LATENTSTUDIO_MIRROR_<NAME>` (comma-separated base URLs) or a function argument.

Selecting: the spec argument of these sources (`cifar10:test,horse,deer`) picks a split and
classes; `finish` then applies the class filter, `limit`, resolution and channels.
"""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch

from latentstudio import __version__
from latentstudio.data import DataOptions
from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError

TIMEOUT_S = 30
SPLITS = ("train", "test")
_CHUNK = 1 << 20


def mirror_env_var(dataset: str) -> str:
    """The environment variable that replaces `dataset`'s mirrors: LATENTSTUDIO_MIRROR_CIFAR10."""
    return "LATENTSTUDIO_MIRROR_" + re.sub(r"[^A-Z0-9]+", "_", dataset.upper())


def resolve_mirrors(dataset: str, defaults: Sequence[str],
                    override: Sequence[str] | str | None = None) -> list[str]:
    """Base URLs to try, in order: `override`, else the environment variable, else `defaults`."""
    if override is None:
        override = os.environ.get(mirror_env_var(dataset)) or None
    if isinstance(override, str):
        override = [u for u in re.split(r"[,\s]+", override) if u]
    mirrors = list(override) if override else list(defaults)
    return [m if m.endswith("/") else m + "/" for m in mirrors]


def file_hash(path: str | os.PathLike, algorithm: str = "sha256") -> str:
    """The hex digest of a file, read in chunks."""
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            h.update(block)
    return h.hexdigest()


def _algorithm(expected: str) -> str:
    # Some datasets publish only md5; the length of the hex digest says which one we were given.
    return {32: "md5", 64: "sha256"}[len(expected)]


def has_hash(path: Path, expected: str) -> bool:
    """Whether `path` exists and its md5/sha256 (chosen by the digest's length) is `expected`."""
    return path.is_file() and file_hash(path, _algorithm(expected)) == expected.lower()


@contextlib.contextmanager
def partial_file(dest: Path) -> Iterator[Path]:
    """A `.part` path beside `dest`; renamed over `dest` if the block succeeds, else removed.

    Used for large outputs (downloads, packs) that should not be buffered in memory.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f"{dest.name}.{os.getpid()}.part")
    try:
        yield part
        os.replace(part, dest)
    finally:
        part.unlink(missing_ok=True)


def _stream(url: str, part: Path, label: str, progress: bool) -> None:
    from tqdm import tqdm

    request = urllib.request.Request(url, headers={"User-Agent": f"latentstudio/{__version__}"})
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response, open(part, "wb") as f:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=label,
                  disable=not progress, leave=False) as bar:
            for block in iter(lambda: response.read(_CHUNK), b""):
                f.write(block)
                bar.update(len(block))
        f.flush()
        os.fsync(f.fileno())


class _Offline(Exception):
    """No mirror could be reached for a file."""


class _Mismatch(Exception):
    """A mirror served a file whose hash is not the published one."""


def _fetch_one(filename: str, dest: Path, expected: str, mirrors: list[str],
               progress: bool) -> None:
    mismatches, failures = [], []
    for base in mirrors:
        url = base + filename
        try:
            with partial_file(dest) as part:
                _stream(url, part, filename, progress)
                got = file_hash(part, _algorithm(expected))
                if got != expected.lower():
                    raise _Mismatch(f"{url} has {_algorithm(expected)} {got}")
        except _Mismatch as e:
            mismatches.append(str(e))
            continue
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            failures.append(getattr(e, "reason", None) or e)
            continue
        return
    if mismatches:
        raise UserError(
            f"downloaded {filename} but it does not match the published {_algorithm(expected)} "
            f"{expected} ({'; '.join(mismatches)}): the mirror served a different or damaged "
            f"file; try again later or save the genuine file as {dest}"
        )
    raise _Offline(str(failures[-1]) if failures else "no mirrors configured")


def fetch_files(dataset: str, hashes: dict[str, str], dest_dir: Path, mirrors: list[str],
                progress: bool = True) -> dict[str, Path]:
    """Make sure every file in `hashes` (name -> md5 or sha256) is in `dest_dir`, verified.

    Files already there with the right hash are reused; others are downloaded from the first
    mirror that serves them. If no mirror answers, a UserError says which URLs to download by
    hand and the exact paths to save them as.
    """
    paths = {name: dest_dir / name for name in hashes}
    still, offline_reason = [], None
    for name in hashes:
        if has_hash(paths[name], hashes[name]):
            continue
        if offline_reason is None:  # after one unreachable file, don't wait on every timeout again
            try:
                _fetch_one(name, paths[name], hashes[name], mirrors, progress)
                continue
            except _Offline as e:
                offline_reason = str(e)
        still.append(name)
    if still:
        wrong = [name for name in still if paths[name].exists()]
        where = ", ".join(f"{mirrors[0] + n if mirrors else n} as {paths[n]}" for n in still)
        bad = f" ({', '.join(wrong)} in the cache fail the hash check)" if wrong else ""
        raise UserError(
            f"{dataset} is not in the cache and could not be downloaded ({offline_reason}){bad}: "
            f"save {where} (or set {mirror_env_var(dataset)} to a reachable mirror)"
        )
    return paths


def parse_selection(dataset: str, arg: str, class_names: Sequence[str]) -> tuple[str, list[int]]:
    """The split and class indices a spec argument names: `test`, `horse`, `3,7`, `test,cat,dog`.

    Classes are given by name (any case) or index; no classes means all of them.
    """
    split, classes = "train", []
    lower = [c.lower() for c in class_names]
    for item in (t.strip() for t in arg.split(",")):
        if not item:
            continue
        if item.lower() in SPLITS:
            split = item.lower()
        elif item.lower() in lower:
            classes.append(lower.index(item.lower()))
        elif item.isdigit() and int(item) < len(class_names):
            classes.append(int(item))
        else:
            names = ", ".join(class_names)
            raise UserError(
                f"{dataset} has no class or split {item!r}: use a class name or index "
                f"({names}), a comma list of them, or 'test' for the test split"
            )
    return split, sorted(set(classes))


def resize_images(images: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
    """Square uint8 images (N, C, S, S) resized to `resolution`, antialiased, in chunks."""
    if images.shape[-1] == resolution and images.shape[-2] == resolution:
        return images
    out = torch.empty((*images.shape[:2], resolution, resolution), dtype=torch.uint8)
    for i in range(0, len(images), chunk):
        x = images[i:i + chunk].float()
        # Bicubic with antialias matches PIL's BICUBIC filter; clamp the ringing it can add.
        y = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bicubic",
                                            antialias=True, align_corners=False)
        out[i:i + chunk] = y.round_().clamp_(0, 255).to(torch.uint8)
    return out


def convert_channels(images: torch.Tensor, channels: int) -> torch.Tensor:
    """uint8 images with 1 or 3 channels as `channels` channels (grey repeats; colour -> luma)."""
    if images.shape[1] == channels:
        return images
    if channels == 3:
        return images.expand(-1, 3, -1, -1).contiguous()
    # ITU-R 601 luma, the same weights PIL uses for convert("L").
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    out = torch.empty((len(images), 1, *images.shape[2:]), dtype=torch.uint8)
    for i in range(0, len(images), 4096):
        out[i:i + 4096] = (images[i:i + 4096].float() * weights).sum(1, keepdim=True).round_().clamp_(0, 255)
    return out


def fit_images(images: torch.Tensor, resolution: int, channels: int) -> torch.Tensor:
    """Square uint8 images at `resolution` px with `channels` channels."""
    if channels < images.shape[1]:  # drop channels first: less to resize
        return resize_images(convert_channels(images, channels), resolution)
    return convert_channels(resize_images(images, resolution), channels)


def finish(images: np.ndarray, labels: np.ndarray, class_names: Sequence[str], classes: list[int],
           opts: DataOptions, native_channels: int) -> ImageSet:
    """The selected classes (relabelled 0..k-1), the first `limit`, at the requested size."""
    names = list(class_names)
    if classes:
        keep = np.isin(labels, classes)
        images, labels = images[keep], labels[keep]
        remap = np.full(len(class_names), -1, dtype=np.int64)
        remap[classes] = np.arange(len(classes))
        labels = remap[labels]
        names = [class_names[c] for c in classes]
    if opts.limit is not None:
        images, labels = images[:opts.limit], labels[:opts.limit]
    x = torch.from_numpy(np.ascontiguousarray(images))
    if x.ndim == 3:
        x = x.unsqueeze(1)
    x = fit_images(x, opts.resolution, opts.channels or native_channels)
    return ImageSet(x, torch.from_numpy(labels.astype(np.int64)), names)
