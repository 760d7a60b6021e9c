"""Writers of tiny files in the published MNIST and CIFAR-10 formats, for the data tests."""

from __future__ import annotations

import gzip
import hashlib
import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from latentstudio.data import cifar


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_idx_gz(path: Path, array: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes, as MNIST publishes them."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def write_cifar_archive(path: Path, per_batch: int = 4, test: int = 6, seed: int = 0,
                        extra: dict[str, bytes] | None = None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """A cifar-10-python.tar.gz in the published layout (Python-2 style pickles of dicts with
    bytes keys); returns {split: (images (N, 3, 32, 32), labels)}."""
    rng = np.random.default_rng(seed)
    members: dict[str, bytes] = {}
    splits: dict[str, list] = {"train": [], "test": []}
    names = [b"data_batch_1", b"data_batch_2", b"data_batch_3", b"data_batch_4", b"data_batch_5",
             b"test_batch"]
    for i, name in enumerate(names):
        n = test if name == b"test_batch" else per_batch
        data = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, n)]
        batch = {b"batch_label": b"batch " + bytes(str(i), "ascii"), b"labels": labels,
                 b"data": data, b"filenames": [b"img%d.png" % j for j in range(n)]}
        members[name.decode()] = pickle.dumps(batch, protocol=2)
        splits["test" if name == b"test_batch" else "train"].append((data, labels))
    meta = {b"label_names": [n.encode() for n in cifar.CLASS_NAMES], b"num_cases_per_batch": per_batch,
            b"num_vis": 3072}
    members["batches.meta"] = pickle.dumps(meta, protocol=2)
    members["readme.html"] = b"<html></html>"
    members.update(extra or {})
    with tarfile.open(path, "w:gz") as tar:
        for name, blob in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    out = {}
    for split, parts in splits.items():
        images = np.concatenate([d for d, _ in parts]).reshape(-1, 3, 32, 32)
        labels = np.concatenate([np.array(lab, dtype=np.int64) for _, lab in parts])
        out[split] = (images, labels)
    return out
