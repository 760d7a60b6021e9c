"""MNIST and Fashion-MNIST: download through a local mirror, hash checks, cache, system copy."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
import torch
from datafiles import sha256, write_idx_gz

from latentstudio.data import load_dataset, mnist
from latentstudio.errors import UserError

SYSTEM_FASHION = Path("/usr/share/datasets/fashion-mnist")


def test_downloads_verifies_and_decodes(serve_mnist, http_server, cache):
    data = serve_mnist("mnist")
    images = load_dataset("mnist", resolution=28)
    want_images, want_labels = data["train"]
    assert images.images.shape == (20, 1, 28, 28) and images.images.dtype == torch.uint8
    assert torch.equal(images.images[:, 0], torch.from_numpy(want_images))
    assert torch.equal(images.labels, torch.from_numpy(want_labels))
    assert images.class_names == [str(d) for d in range(10)]
    assert sorted(Path(p).name for p in http_server.requests) == sorted(mnist.split_files("train"))
    assert (cache / "mnist" / "train.npz").is_file()
    assert not list((cache / "mnist").glob("*.part"))


def test_second_load_uses_cache_without_server(serve_mnist, http_server, cache):
    serve_mnist("mnist")
    first = load_dataset("mnist", resolution=28)
    http_server.stop()
    for f in (cache / "mnist").glob("*.gz"):  # even the raw files are no longer needed
        f.unlink()
    second = load_dataset("mnist", resolution=28)
    assert second.fingerprint() == first.fingerprint()


def test_test_split_class_filter_resize_and_channels(serve_mnist):
    data = serve_mnist("mnist")
    test = load_dataset("mnist:test", resolution=28)
    assert torch.equal(test.images[:, 0], torch.from_numpy(data["test"][0]))
    picked = load_dataset("mnist:3,7", resolution=32, channels=3)
    keep = np.isin(data["train"][1], [3, 7])
    assert picked.images.shape == (keep.sum(), 3, 32, 32)
    assert picked.class_names == ["3", "7"]
    assert set(picked.labels.tolist()) == {0, 1}
    assert torch.equal(picked.images[:, 0], picked.images[:, 2])  # grey repeated
    assert len(load_dataset("mnist", resolution=28, limit=5)) == 5


def test_fashion_names_and_class_by_name(serve_mnist):
    serve_mnist("fashion-mnist")
    images = load_dataset("fashion-mnist:sneaker,Bag", resolution=28)
    assert images.class_names == ["sneaker", "bag"]
    with pytest.raises(UserError, match="ankle boot"):
        load_dataset("fashion-mnist:shoe")


def test_hash_mismatch_is_refused(serve_mnist, monkeypatch, cache):
    serve_mnist("mnist")
    bad = dict(mnist.SHA256["mnist"])
    bad["train-images-idx3-ubyte.gz"] = "0" * 64
    monkeypatch.setitem(mnist.SHA256, "mnist", bad)
    with pytest.raises(UserError, match="does not match the published sha256"):
        load_dataset("mnist")
    assert not (cache / "mnist" / "train-images-idx3-ubyte.gz").exists()
    assert not list((cache / "mnist").glob("*.part"))


def test_offline_says_what_to_download_and_where(monkeypatch, dead_url, cache):
    monkeypatch.setitem(mnist.MIRRORS, "mnist", [dead_url])
    with pytest.raises(UserError) as e:
        load_dataset("mnist")
    message = str(e.value)
    assert "\n" not in message
    assert dead_url + "train-images-idx3-ubyte.gz" in message
    assert str(cache / "mnist" / "train-labels-idx1-ubyte.gz") in message
    assert "LATENTSTUDIO_MIRROR_MNIST" in message


def test_mirror_env_var_and_fallback(serve_mnist, http_server, monkeypatch, dead_url):
    serve_mnist("mnist")
    monkeypatch.setitem(mnist.MIRRORS, "mnist", ["http://unused.invalid/"])
    monkeypatch.setenv("LATENTSTUDIO_MIRROR_MNIST", f"{dead_url},{http_server.url}mnist")
    assert len(load_dataset("mnist", resolution=28)) == 20


def test_system_copy_is_used_without_download(serve_mnist, http_server, tmp_path, monkeypatch):
    data = serve_mnist("fashion-mnist")
    system = tmp_path / "system"
    system.mkdir()
    for name in mnist.split_files("train"):  # recompressed, as Debian ships them
        raw = gzip.decompress((http_server.root / "fashion-mnist" / name).read_bytes())
        (system / name).write_bytes(gzip.compress(raw, mtime=0))
    monkeypatch.setitem(mnist.SYSTEM_DIRS, "fashion-mnist", [system])
    images = load_dataset("fashion-mnist", resolution=28)
    assert http_server.requests == []
    assert torch.equal(images.images[:, 0], torch.from_numpy(data["train"][0]))


def test_damaged_idx_is_a_user_error(tmp_path):
    path = tmp_path / "x-idx3-ubyte.gz"
    write_idx_gz(path, np.zeros((2, 28, 28), np.uint8))
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-10]))
    with pytest.raises(UserError, match="truncated"):
        mnist.read_idx(path)
    path.write_bytes(b"not gzip at all")
    with pytest.raises(UserError, match="cannot read"):
        mnist.read_idx(path)


def test_damaged_cache_is_rebuilt(serve_mnist, cache):
    serve_mnist("mnist")
    first = load_dataset("mnist", resolution=28)
    (cache / "mnist" / "train.npz").write_bytes(b"garbage")
    assert load_dataset("mnist", resolution=28).fingerprint() == first.fingerprint()


def test_resize_is_antialiased(serve_mnist):
    serve_mnist("mnist")
    small = load_dataset("mnist", resolution=14)
    full = load_dataset("mnist", resolution=28).images.float()
    box = full.reshape(20, 1, 14, 2, 14, 2).mean((3, 5))
    # Random pixels: antialiased downsampling lands near the box average, nearest-neighbour not.
    assert (small.images.float() - box).abs().mean() < 25


@pytest.mark.skipif(not SYSTEM_FASHION.is_dir(),
                    reason="Debian's dataset-fashion-mnist is not installed "
                           "(/usr/share/datasets/fashion-mnist is absent)")
def test_real_system_fashion_mnist(monkeypatch):
    monkeypatch.setitem(mnist.MIRRORS, "fashion-mnist", [])  # must not need the network
    images = load_dataset("fashion-mnist", resolution=28)
    assert images.images.shape == (60000, 1, 28, 28)
    assert images.num_classes == 10
    assert images.labels.bincount().tolist() == [6000] * 10


def test_sha256_helper_matches_download_module(tmp_path):
    from latentstudio.data.download import file_hash

    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert file_hash(path) == sha256(path)
    assert file_hash(path, "md5") == "900150983cd24fb0d6963f7d28e17f72"
