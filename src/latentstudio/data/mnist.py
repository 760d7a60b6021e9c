"""MNIST and Fashion-MNIST: 28 px greyscale, 10 classes, 60,000 train and 10,000 test images.

Specs: `mnist`, `mnist:test`, `mnist:3,7`, `fashion-mnist:sneaker`. The gzipped IDX files are
downloaded once into `cache_dir()/<name>/` (sha256-checked) and decoded once into a pack
there (`train.npz`, `test.npz`). Fashion-MNIST first uses the copy Debian's
`dataset-fashion-mnist` package installs in /usr/share/datasets/fashion-mnist/: Debian
recompresses the files, so their gzip bytes differ from the published ones; that copy is trusted
as installed and checked for a well-formed IDX layout instead.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
from pathlib import Path

import numpy as np
import torch

from latentstudio.data import DataOptions, register_source
from latentstudio.data.base import ImageSet, fit_tensor
from latentstudio.data.download import fetch_files, finish, parse_selection, resolve_mirrors
from latentstudio.data.packed import read_pack, save_pack
from latentstudio.errors import UserError
from latentstudio.paths import cache_dir

MIRRORS: dict[str, list[str]] = {
    "mnist": [
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://yann.lecun.com/exdb/mnist/",
    ],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

# Published sha256 of the gzipped files (same values torchvision's md5s and TFDS checksums pin).
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "train-labels-idx1-ubyte.gz": "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "t10k-images-idx3-ubyte.gz": "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "t10k-labels-idx1-ubyte.gz": "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
        "train-labels-idx1-ubyte.gz": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
        "t10k-images-idx3-ubyte.gz": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
        "t10k-labels-idx1-ubyte.gz": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
    },
}

# Folders where an operating-system package may already hold the gzipped IDX files.
SYSTEM_DIRS: dict[str, list[Path]] = {
    "mnist": [],
    "fashion-mnist": [Path("/usr/share/datasets/fashion-mnist")],
}

CLASS_NAMES: dict[str, list[str]] = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                      "sneaker", "bag", "ankle boot"],
}

_PREFIX = {"train": "train", "test": "t10k"}
_IDX_TYPES = {0x08: np.uint8}


def split_files(split: str) -> tuple[str, str]:
    """The (images, labels) file names of a split."""
    return f"{_PREFIX[split]}-images-idx3-ubyte.gz", f"{_PREFIX[split]}-labels-idx1-ubyte.gz"


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (gzipped or not) of unsigned bytes as an array of its stated shape."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise UserError(f"cannot read {path} ({e}): delete it so it is downloaded again") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_TYPES:
        raise UserError(f"{path} is not an IDX file of unsigned bytes: delete it so it is "
                        f"downloaded again")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    if len(data) - offset != int(np.prod(shape)):
        raise UserError(f"{path} is truncated or damaged (header says {shape}, "
                        f"{len(data) - offset} bytes follow): delete it so it is downloaded again")
    return np.frombuffer(data, dtype=_IDX_TYPES[data[2]], offset=offset).reshape(shape).copy()


def _system_copy(name: str, files: tuple[str, str]) -> Path | None:
    for folder in SYSTEM_DIRS.get(name, []):
        if all((folder / f).is_file() for f in files):
            return folder
    return None


def load_arrays(name: str = "mnist", split: str = "train", mirrors: list[str] | str | None = None,
                progress: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Images (N, 28, 28) uint8 and labels (N,) of `name` ("mnist" or "fashion-mnist").

    Reads the decoded cache if present; otherwise finds the files (system copy, cache, or a
    download from `mirrors`, else MIRRORS / $LATENTSTUDIO_MIRROR_<NAME>) and writes the cache.
    """
    folder = cache_dir() / name
    cached = folder / f"{split}.npz"
    if cached.is_file():
        try:
            pack, _ = read_pack(cached)
            if pack.labels is not None:
                return pack.images[:, 0].numpy(), pack.labels.numpy()
        except UserError:
            pass  # a damaged cache is rebuilt from the source files below
    files = split_files(split)
    source = _system_copy(name, files)
    if source is not None:
        paths = [source / f for f in files]
    else:
        hashes = {f: SHA256[name][f] for f in files}
        urls = resolve_mirrors(name, MIRRORS[name], mirrors)
        fetched = fetch_files(name, hashes, folder, urls, progress)
        paths = [fetched[f] for f in files]
    images, labels = read_idx(paths[0]), read_idx(paths[1])
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels) or labels.max() >= 10:
        raise UserError(f"{paths[0]} and {paths[1]} do not form an MNIST-style split "
                        f"(images {images.shape}, labels {labels.shape})")
    decoded = ImageSet(torch.from_numpy(images[:, None].copy()),
                       torch.from_numpy(labels.astype(np.int64)),
                       CLASS_NAMES[name], f"{name}:{split}")
    try:
        save_pack(decoded, cached, {"source": str(paths[0].parent)}, compress=False)
    except OSError:
        pass  # a read-only cache only costs speed next time
    return images, labels


def _load(name: str, arg: str, opts: DataOptions) -> ImageSet:
    split, classes = parse_selection(name, arg, CLASS_NAMES[name])
    images, labels = load_arrays(name, split, progress=opts.progress)
    if opts.height is None:
        return finish(images, labels, CLASS_NAMES[name], classes, opts, native_channels=1)
    # Another aspect ratio: the 28 px originals, then cropped or padded (--fit) in one resize.
    out = finish(images, labels, CLASS_NAMES[name], classes,
                 dataclasses.replace(opts, resolution=images.shape[-1], height=None), native_channels=1)
    out.images = fit_tensor(out.images, *opts.size, opts.fit)
    return out


@register_source("mnist")
def load_mnist(arg: str, opts: DataOptions) -> ImageSet:
    """Handwritten digits: `mnist`, `mnist:test`, `mnist:3,7`."""
    return _load("mnist", arg, opts)


@register_source("fashion-mnist")
def load_fashion_mnist(arg: str, opts: DataOptions) -> ImageSet:
    """Zalando article photos: `fashion-mnist`, `fashion-mnist:test`, `fashion-mnist:sneaker,bag`."""
    return _load("fashion-mnist", arg, opts)
