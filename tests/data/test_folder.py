"""Image folders: odd modes, EXIF rotation, broken files skipped in one line, crop vs pad, labels."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.data import load_dataset
from latentstudio.data.folder import decode_image, find_images, load_folder_images
from latentstudio.errors import UserError

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def _noise(w: int, h: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")


def _rotated_jpeg(path: Path) -> None:
    # Stored 40x20 with red on top; orientation 6 says "rotate 90 degrees clockwise to view",
    # which puts the red half on the right of a 20x40 picture.
    img = Image.new("RGB", (40, 20), BLUE)
    img.paste(RED, (0, 0, 40, 10))
    exif = Image.Exif()
    exif[0x0112] = 6
    img.save(path, quality=95, exif=exif.tobytes())


@pytest.fixture
def photo_folder(tmp_path: Path) -> Path:
    """12 readable images in odd modes under cats/, 1 under dogs/, 3 broken, hidden and other files."""
    root = tmp_path / "photos"
    cats, dogs = root / "cats", root / "dogs"
    cats.mkdir(parents=True)
    dogs.mkdir()
    base = _noise(40, 30)
    base.save(cats / "a_rgb.png")
    base.convert("L").save(cats / "b_grey.png")
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(cats / "c_palette.png")
    Image.new("RGBA", (30, 30), (255, 0, 0, 0)).save(cats / "d_transparent.png")
    base.convert("CMYK").save(cats / "e_cmyk.jpg")
    Image.fromarray(np.full((30, 30), 32896, np.uint16)).save(cats / "f_16bit.png")  # 128 * 257
    bilevel = Image.new("1", (30, 30), 0)
    bilevel.paste(1, (15, 0, 30, 30))
    bilevel.save(cats / "g_bilevel.png")
    _rotated_jpeg(cats / "h_exif.jpg")
    base.convert("P", palette=Image.Palette.ADAPTIVE).save(cats / "i_anim.gif", save_all=True,
                                                           append_images=[_noise(40, 30, 1)])
    base.save(cats / "j.webp")
    base.save(cats / "k.bmp")
    base.save(cats / "l.tif")
    base.save(dogs / "m.PNG")
    buf = io.BytesIO()
    _noise(64, 64).save(buf, format="JPEG")
    (dogs / "truncated.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) * 2 // 3])
    (dogs / "empty.png").write_bytes(b"")
    (dogs / "text.jpg").write_text("these are not pixels")
    (cats / "notes.txt").write_text("ignored")
    (cats / "data.csv").write_text("ignored")
    base.save(root / ".hidden.png")
    (root / ".git").mkdir()
    base.save(root / ".git" / "x.png")
    (dogs / ".DS_Store").write_bytes(b"\0\0")
    return root


def test_odd_modes_load_and_broken_files_are_reported_once(photo_folder, capsys):
    images = load_dataset(str(photo_folder), resolution=16)
    assert images.images.shape == (13, 3, 16, 16) and images.images.dtype == torch.uint8
    assert images.class_names == ["cats", "dogs"]
    assert images.labels.tolist() == [0] * 12 + [1]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("skipped 3 of 16 files")
    assert err[0].endswith("dogs/empty.png, dogs/text.jpg, dogs/truncated.jpg")


def test_pixels_of_special_modes(photo_folder):
    images = load_folder_images(photo_folder, resolution=16)
    names = [p.as_posix() for p in find_images(photo_folder)]
    readable = [n for n in names if not n.startswith("dogs/") or n == "dogs/m.PNG"]
    assert len(readable) == len(images)
    pixel = {n: images.images[i] for i, n in enumerate(readable)}
    assert (pixel["cats/d_transparent.png"] == 255).all()  # alpha composited on white
    assert (pixel["cats/f_16bit.png"] == 128).all()  # 16-bit scaled, not clipped
    bilevel = pixel["cats/g_bilevel.png"]
    assert bilevel.min() == 0 and bilevel.max() == 255  # 0/255, not 0/1
    grey = pixel["cats/b_grey.png"]
    assert torch.equal(grey[0], grey[1]) and torch.equal(grey[1], grey[2])


def test_exif_orientation_is_applied(photo_folder):
    img = decode_image(photo_folder / "cats" / "h_exif.jpg", 16)
    left, right = img[8, 2].astype(int), img[8, 13].astype(int)
    assert np.abs(left - BLUE).max() < 40 and np.abs(right - RED).max() < 40


def test_hidden_and_non_image_files_ignored_in_sorted_order(photo_folder):
    names = [p.as_posix() for p in find_images(photo_folder)]
    assert names == sorted(names)
    assert not any(part.startswith(".") for n in names for part in n.split("/"))
    assert not any(n.endswith((".txt", ".csv")) for n in names)
    assert "dogs/m.PNG" in names and len(names) == 16


def test_crop_versus_pad(tmp_path):
    img = Image.new("RGB", (60, 20), RED)
    img.paste(BLUE, (0, 0, 20, 20))  # the left third is blue
    img.save(tmp_path / "wide.png")
    crop = decode_image(tmp_path / "wide.png", 32, fit="crop")
    pad = decode_image(tmp_path / "wide.png", 32, fit="pad")
    assert crop.shape == pad.shape == (32, 32, 3)
    assert np.abs(crop[:, 2:-2].astype(int) - RED).max() < 10  # the centre third only
    assert np.abs(pad[16, 2].astype(int) - BLUE).max() < 10  # the whole width, bars above/below
    assert np.abs(pad[0, 16].astype(int) - RED).max() < 10  # bars take the border's colour


def test_pad_on_white_background_is_white(tmp_path):
    img = Image.new("RGB", (60, 20), WHITE)
    img.paste((0, 0, 0), (25, 5, 35, 15))
    img.save(tmp_path / "product.jpg", quality=95)
    pad = decode_image(tmp_path / "product.jpg", 32, fit="pad")
    assert pad[:8].min() > 240 and pad[16, 16].max() < 40


def test_flat_folder_has_no_labels_and_respects_limit_and_channels(tmp_path):
    for i in range(5):
        _noise(20, 20, i).save(tmp_path / f"{i}.png")
    images = load_dataset(f"folder:{tmp_path}", resolution=8, channels=1, limit=3)
    assert images.images.shape == (3, 1, 8, 8) and images.labels is None
    again = load_dataset(f"folder:{tmp_path}", resolution=8, channels=1)
    assert torch.equal(again.images[:3], images.images)


def test_images_at_top_and_in_subfolders_load_without_labels(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    _noise(20, 20).save(tmp_path / "a" / "x.png")
    _noise(20, 20).save(tmp_path / "top.png")
    images = load_dataset(str(tmp_path), resolution=8)
    assert len(images) == 2 and images.labels is None
    assert "without class labels" in capsys.readouterr().err


@pytest.mark.parametrize("make, match", [
    (lambda p: p, "holds no image files"),
    (lambda p: (p / "notes.txt").write_text("x") and p, "holds no image files"),
    (lambda p: p / "missing", "does not exist"),
    (lambda p: (p / "f.png").write_bytes(b"x") and p / "f.png", "is a file, not a folder"),
    (lambda p: (p / "bad.png").write_bytes(b"x") and p, "none of the 1 image files"),
])
def test_user_errors(tmp_path, make, match):
    folder = tmp_path / "d"
    folder.mkdir()
    with pytest.raises(UserError, match=match):
        load_folder_images(make(folder), resolution=8)


def test_many_files_in_a_thread_pool_keep_their_order(tmp_path):
    for i in range(40):
        Image.new("L", (12, 12), i * 6).save(tmp_path / f"{i:03d}.png")
    images = load_folder_images(tmp_path, resolution=8, channels=1, progress=False)
    assert images.images[:, 0, 4, 4].tolist() == [i * 6 for i in range(40)]


def test_a_folder_of_pictures_smaller_than_the_size_is_noted_once(tmp_path, capsys):
    for i in range(3):
        _noise(40, 30, seed=i).save(tmp_path / f"small{i}.png")
    _noise(200, 100).save(tmp_path / "big.png")
    load_folder_images(tmp_path, resolution=64, progress=False)  # 3 of 4 enlarged 2.1x
    err = capsys.readouterr().err
    assert err == (f"note: 3 of 4 images in {tmp_path} are smaller than 64 px and are enlarged "
                   "(median shorter side 30 px): samples will be no sharper than them; a "
                   "--resolution near their size trains faster\n")
    # 40x30 into 64x32: a crop scales it by max(1.6, 1.07), padding by min(1.6, 1.07).
    load_folder_images(tmp_path, resolution=64, height=32, progress=False)
    assert "smaller than 64x32 px" in capsys.readouterr().err
    load_folder_images(tmp_path, resolution=64, fit="pad", height=32, progress=False)
    load_folder_images(tmp_path, resolution=40, progress=False)  # 1.33x: soft enough
    load_folder_images(tmp_path, resolution=64, limit=2, progress=False)  # big.png, small0.png
    assert capsys.readouterr().err == ""
    _noise(50, 40).save(tmp_path / "z.png")
    _noise(60, 60).save(tmp_path / "zz.png")
    load_folder_images(tmp_path, resolution=56, progress=False)  # z 1.4x: 3 of 6, not most
    assert capsys.readouterr().err == ""
    load_folder_images(tmp_path, resolution=64, progress=False)  # z 1.6x: 4 of 6
    assert "4 of 6 images" in capsys.readouterr().err


def test_a_folder_too_big_for_the_free_memory_is_refused_before_decoding(tmp_path, monkeypatch):
    import latentstudio.data.folder as folder
    import latentstudio.devices

    for i in range(10):
        _noise(8, 8, seed=i).save(tmp_path / f"{i}.png")
    # 10 images of 3 x 64 x 64 bytes are 120 KiB; 100 KiB free leaves room for 6 (80%).
    monkeypatch.setattr(latentstudio.devices, "available_ram", lambda: 100 * 1024)
    with monkeypatch.context() as m:
        decoded = []
        m.setattr(folder, "decode_image", lambda *a, **k: decoded.append(a))
        with pytest.raises(UserError, match=r"^10 images at 64 px need 120 KiB of memory, more "
                                            r"than the 100 KiB free: use at most 6 images \(train "
                                            r"--data-limit, pack --limit\) or a lower --resolution$"):
            load_folder_images(tmp_path, resolution=64, channels=3, progress=False)
        assert decoded == []
    assert len(load_folder_images(tmp_path, resolution=64, channels=3, limit=6,
                                  progress=False).images) == 6
    monkeypatch.setattr(latentstudio.devices, "available_ram", lambda: 0)  # unknown: no check
    assert len(load_folder_images(tmp_path, resolution=64, channels=3, progress=False).images) == 10
