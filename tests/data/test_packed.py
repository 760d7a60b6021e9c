"""Packs: round trip, conversion on load, damaged and foreign files, the pack/info commands."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio import __version__, cli
from latentstudio.data import load_dataset
from latentstudio.data.packed import pack_dataset, read_pack, save_pack
from latentstudio.errors import UserError


@pytest.fixture
def pack(tmp_path):
    path, images = pack_dataset("shapes:24", tmp_path / "shapes.npz", resolution=16, seed=3)
    return path, images


def test_round_trip_is_exact(pack):
    path, original = pack
    loaded, meta = read_pack(path)
    assert torch.equal(loaded.images, original.images)
    assert torch.equal(loaded.labels, original.labels)
    assert loaded.class_names == original.class_names
    assert meta["fingerprint"] == original.fingerprint() == loaded.fingerprint()
    assert (meta["spec"], meta["resolution"], meta["channels"], meta["count"]) == ("shapes:24", 16, 3, 24)
    assert meta["latentstudio_version"] == __version__
    via_spec = load_dataset(str(path), resolution=16)
    assert via_spec.fingerprint() == original.fingerprint() and via_spec.spec == str(path)


def test_other_size_or_channels_converts_with_a_note(pack, capsys):
    path, original = pack
    same = load_dataset(str(path), resolution=16)
    assert capsys.readouterr().err == "" and torch.equal(same.images, original.images)
    grey = load_dataset(str(path), resolution=32, channels=1, limit=5)
    assert grey.images.shape == (5, 1, 32, 32)
    assert "holds 16 px 3-channel images; converting to 32 px 1-channel" in capsys.readouterr().err


def test_pack_without_labels(tmp_path):
    for i in range(3):
        Image.new("RGB", (10, 10), (i * 50, 0, 0)).save(tmp_path / f"{i}.png")
    path, images = pack_dataset(str(tmp_path), tmp_path / "out" / "flat.npz", resolution=8,
                                compress=False)
    loaded, _ = read_pack(path)
    assert loaded.labels is None and loaded.class_names == []
    assert torch.equal(loaded.images, images.images)


def test_truncated_or_garbage_file(pack, tmp_path):
    path, _ = pack
    data = path.read_bytes()
    broken = tmp_path / "broken.npz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(UserError, match="damaged"):
        load_dataset(str(broken))
    broken.write_bytes(b"hello, not a zip")
    with pytest.raises(UserError, match="damaged or not a .npz"):
        load_dataset(str(broken))
    with pytest.raises(UserError, match="no pack at"):
        load_dataset(str(tmp_path / "missing.npz"))


def test_foreign_npz(tmp_path):
    path = tmp_path / "foreign.npz"
    np.savez(path, x=np.zeros(3), y=np.ones(2))
    with pytest.raises(UserError, match=r"not a latentstudio pack \(it holds x, y\)"):
        load_dataset(str(path))
    np.savez(path, images=np.zeros((1, 3, 8, 8), np.uint8), meta=np.array(json.dumps({"format": "other"})))
    with pytest.raises(UserError, match="unknown format"):
        load_dataset(str(path))


def test_images_not_matching_the_fingerprint(pack, tmp_path):
    path, original = pack
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["images"] = arrays["images"].copy()
    arrays["images"][0, 0, 0, 0] ^= 1
    tampered = tmp_path / "tampered.npz"
    np.savez(tampered, **arrays)
    with pytest.raises(UserError, match="does not match the fingerprint|do not match the fingerprint"):
        read_pack(tampered)


def test_save_is_atomic_on_failure(tmp_path, pack, monkeypatch):
    path, original = pack
    before = path.read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(np, "savez_compressed", boom)
    with pytest.raises(RuntimeError):
        save_pack(original, path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["shapes.npz"]


def test_out_must_be_npz(tmp_path):
    with pytest.raises(UserError, match="must end in .npz"):
        pack_dataset("shapes:4", tmp_path / "data.zip")


def test_pack_command(tmp_path, capsys):
    out = tmp_path / "p.npz"
    code = cli.main(["pack", "shapes:12", "--resolution", "16", "--channels", "1", "--out", str(out),
                     "--no-progress"])
    printed = capsys.readouterr().out
    assert code == 0 and f"wrote 12 images (16 px, 1 channel, 4 classes) to {out}" in printed
    assert read_pack(out)[0].images.shape == (12, 1, 16, 16)
    assert cli.main(["info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "made from 'shapes:12'" in info and "12 images, 16 px, 1 channel," in info
    assert cli.main(["pack", "nope", "--out", str(out)]) == 2
    assert "unknown data spec" in capsys.readouterr().err
