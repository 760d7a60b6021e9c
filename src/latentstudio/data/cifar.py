"""CIFAR-10: 32 px colour photos, 10 classes, 50,000 train and 10,000 test images.

Specs: `cifar10`, `cifar10:horse`, `cifar10:horse,deer`, `cifar10:7`, `cifar10:test,cat`.
The python-format archive is downloaded once into `cache_dir()/cifar10/` (sha256-checked) and
decoded once into packs there (`train.npz`, `test.npz`). The archive's batches are pickles; they
are read with an unpickler that only rebuilds plain containers and numpy arrays, so a tampered
file cannot run code.
"""

from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from latentstudio.data import DataOptions, register_source
from latentstudio.data.base import ImageSet, fit_tensor
from latentstudio.data.download import fetch_files, finish, parse_selection, resolve_mirrors
from latentstudio.data.packed import read_pack, save_pack
from latentstudio.errors import UserError
from latentstudio.paths import cache_dir

NAME = "cifar10"
ARCHIVE = "cifar-10-python.tar.gz"
MIRRORS: list[str] = ["https://www.cs.toronto.edu/~kriz/"]
# The archive's published sha256 (as Keras pins it; the CIFAR page lists md5
# c58f30108f718f92721af3b95e74349a for the same file).
SHA256: dict[str, str] = {ARCHIVE: "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
               "truck"]

_BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
_MEMBERS = {"batches.meta", *_BATCHES["train"], *_BATCHES["test"]}
_SAFE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("_codecs", "encode"),  # how protocol-2 pickles written by Python 3 spell bytes
}


class _ArrayUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle(data: bytes) -> dict[str, Any]:
    # The batches were pickled by Python 2: keys are bytes, so decode them after loading.
    obj = _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()
    return {(k.decode() if isinstance(k, bytes) else k): v for k, v in obj.items()}


def read_archive(path: str | os.PathLike) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str]]:
    """{split: (images (N, 3, 32, 32) uint8, labels (N,) int64)} and the class names."""
    path = Path(path)
    members: dict[str, dict[str, Any]] = {}
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar:
                base = member.name.rsplit("/", 1)[-1]
                if member.isfile() and base in _MEMBERS:
                    members[base] = _unpickle(tar.extractfile(member).read())
    except (OSError, EOFError, tarfile.TarError, pickle.UnpicklingError, AttributeError,
            ValueError) as e:
        raise UserError(f"cannot read {path} ({e}): delete it so it is downloaded again") from None
    if missing := sorted(_MEMBERS - members.keys()):
        raise UserError(f"{path} lacks {', '.join(missing)}: it is not the CIFAR-10 python "
                        f"archive; delete it so it is downloaded again")
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in members["batches.meta"]["label_names"]]
    splits = {}
    for split, batches in _BATCHES.items():
        data = np.concatenate([np.asarray(members[b]["data"], dtype=np.uint8) for b in batches])
        labels = np.concatenate([np.asarray(members[b]["labels"], dtype=np.int64) for b in batches])
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(labels):
            raise UserError(f"{path} holds batches of an unexpected shape {data.shape}: "
                            f"delete it so it is downloaded again")
        # Each row is the red plane, then green, then blue, each 32x32 row-major.
        splits[split] = (data.reshape(-1, 3, 32, 32), labels)
    return splits, names


def load_arrays(split: str = "train", mirrors: list[str] | str | None = None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Images (N, 3, 32, 32) uint8, labels (N,) and class names of a CIFAR-10 split.

    Reads the decoded cache if present; otherwise downloads the archive (from `mirrors`, else
    MIRRORS / $LATENTSTUDIO_MIRROR_CIFAR10), decodes both splits and writes the cache.
    """
    folder = cache_dir() / NAME
    cached = folder / f"{split}.npz"
    if cached.is_file():
        try:
            pack, _ = read_pack(cached)
            if pack.labels is not None:
                return pack.images.numpy(), pack.labels.numpy(), pack.class_names
        except UserError:
            pass  # a damaged cache is rebuilt from the archive below
    urls = resolve_mirrors(NAME, MIRRORS, mirrors)
    archive = fetch_files(NAME, dict(SHA256), folder, urls, progress)[ARCHIVE]
    splits, names = read_archive(archive)
    for name, (images, labels) in splits.items():
        decoded = ImageSet(torch.from_numpy(images), torch.from_numpy(labels), names,
                           f"{NAME}:{name}")
        try:
            save_pack(decoded, folder / f"{name}.npz", {"source": str(archive)}, compress=False)
        except OSError:
            pass  # a read-only cache only costs speed next time
    images, labels = splits[split]
    return images, labels, names


@register_source("cifar10")
def load_cifar10(arg: str, opts: DataOptions) -> ImageSet:
    """CIFAR-10, optionally one split and some classes: `cifar10:test,horse,deer`."""
    split, classes = parse_selection(NAME, arg, CLASS_NAMES)
    images, labels, names = load_arrays(split, progress=opts.progress)
    if opts.height is None:
        return finish(images, labels, names, classes, opts, native_channels=3)
    # Another aspect ratio: the 32 px originals, then cropped or padded (--fit) in one resize.
    out = finish(images, labels, names, classes,
                 dataclasses.replace(opts, resolution=images.shape[-2], height=None), native_channels=3)
    out.images = fit_tensor(out.images, *opts.size, opts.fit)
    return out
