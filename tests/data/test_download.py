"""The download machinery: mirrors, verified atomic fetches, selections, batch resizing."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from latentstudio.data.download import (
    convert_channels,
    fetch_files,
    mirror_env_var,
    parse_selection,
    partial_file,
    resize_images,
    resolve_mirrors,
)
from latentstudio.errors import UserError


def _serve(server, name: str, payload: bytes) -> str:
    (server.root / name).write_bytes(payload)
    return hashlib.sha256(payload).hexdigest()


def test_mirror_precedence(monkeypatch):
    assert mirror_env_var("fashion-mnist") == "LATENTSTUDIO_MIRROR_FASHION_MNIST"
    assert resolve_mirrors("mnist", ["https://a/x"]) == ["https://a/x/"]
    monkeypatch.setenv("LATENTSTUDIO_MIRROR_MNIST", "http://b/, http://c")
    assert resolve_mirrors("mnist", ["https://a/"]) == ["http://b/", "http://c/"]
    assert resolve_mirrors("mnist", ["https://a/"], ["http://d"]) == ["http://d/"]


def test_fetch_verifies_and_reuses(http_server, tmp_path):
    digest = _serve(http_server, "f.bin", b"payload" * 1000)
    dest = tmp_path / "cache"
    paths = fetch_files("thing", {"f.bin": digest}, dest, [http_server.url], progress=False)
    assert paths["f.bin"].read_bytes() == b"payload" * 1000
    fetch_files("thing", {"f.bin": digest}, dest, [http_server.url], progress=False)
    assert http_server.requests == ["/f.bin"]
    assert [p.name for p in dest.iterdir()] == ["f.bin"]


def test_md5_digests_are_accepted(http_server, tmp_path):
    _serve(http_server, "f.bin", b"abc")
    paths = fetch_files("thing", {"f.bin": "900150983cd24fb0d6963f7d28e17f72"}, tmp_path / "c",
                        [http_server.url], progress=False)
    assert paths["f.bin"].read_bytes() == b"abc"


def test_falls_back_past_missing_and_dead_mirrors(http_server, tmp_path, dead_url):
    digest = _serve(http_server, "f.bin", b"x")
    mirrors = [dead_url, http_server.url + "nothing-here/", http_server.url]
    fetch_files("thing", {"f.bin": digest}, tmp_path / "c", mirrors, progress=False)
    assert (tmp_path / "c" / "f.bin").read_bytes() == b"x"


def test_a_wrong_file_in_the_cache_is_replaced(http_server, tmp_path):
    digest = _serve(http_server, "f.bin", b"good")
    (tmp_path / "f.bin").write_bytes(b"stale")
    fetch_files("thing", {"f.bin": digest}, tmp_path, [http_server.url], progress=False)
    assert (tmp_path / "f.bin").read_bytes() == b"good"
    assert not list(tmp_path.glob("*.part"))


def test_mismatch_leaves_nothing_behind(http_server, tmp_path):
    _serve(http_server, "f.bin", b"tampered")
    with pytest.raises(UserError, match="does not match the published sha256 " + "a" * 64):
        fetch_files("thing", {"f.bin": "a" * 64}, tmp_path / "c", [http_server.url], progress=False)
    assert list((tmp_path / "c").iterdir()) == []


def test_offline_names_every_missing_file(tmp_path, dead_url):
    hashes = {"a.gz": "0" * 64, "b.gz": "1" * 64}
    with pytest.raises(UserError) as e:
        fetch_files("thing", hashes, tmp_path / "c", [dead_url], progress=False)
    message = str(e.value)
    assert f"save {dead_url}a.gz as {tmp_path / 'c' / 'a.gz'}, {dead_url}b.gz as" in message
    assert "LATENTSTUDIO_MIRROR_THING" in message and "\n" not in message


def test_partial_file_renames_only_on_success(tmp_path):
    dest = tmp_path / "out.bin"
    with partial_file(dest) as part:
        part.write_bytes(b"1")
    assert dest.read_bytes() == b"1"
    with pytest.raises(KeyError), partial_file(dest) as part:
        part.write_bytes(b"2")
        raise KeyError
    assert dest.read_bytes() == b"1" and [p.name for p in tmp_path.iterdir()] == ["out.bin"]


def test_parse_selection():
    names = ["cat", "dog", "horse"]
    assert parse_selection("x", "", names) == ("train", [])
    assert parse_selection("x", "test", names) == ("test", [])
    assert parse_selection("x", "Horse, 0,horse", names) == ("train", [0, 2])
    with pytest.raises(UserError, match="cat, dog, horse"):
        parse_selection("x", "3", names)


def test_resize_and_channels():
    flat = torch.full((3, 1, 28, 28), 77, dtype=torch.uint8)
    assert torch.equal(resize_images(flat, 64), torch.full((3, 1, 64, 64), 77, dtype=torch.uint8))
    assert resize_images(flat, 28) is flat
    rng = np.random.default_rng(0)
    colour = torch.from_numpy(rng.integers(0, 256, (5, 3, 8, 8), dtype=np.uint8))
    grey = convert_channels(colour, 1)
    want = (colour.float() * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    assert (grey.float() - want).abs().max() <= 0.5
    assert convert_channels(grey, 3).shape == (5, 3, 8, 8)
    assert resize_images(colour, 4, chunk=2).shape == (5, 3, 4, 4)
