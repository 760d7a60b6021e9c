"""Big pictures: decoded reduced to what the target size needs; over the pixel limit, skipped."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentstudio import images
from latentstudio.data import folder
from latentstudio.data.folder import decode_image, fit_square, load_folder_images, standard_mode


def gradient(width: int, height: int) -> np.ndarray:
    """A smooth RGB picture, so a box-reduced decode must look like the full-size one."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([255 * x / width, 255 * y / height, 128 + 0 * x], axis=2).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".jpg", ".png"])
def test_big_images_reach_the_resize_reduced(suffix: str, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / f"big{suffix}"
    Image.fromarray(gradient(6000, 4000)).save(path)
    seen = []

    def spy(img: Image.Image, channels: int) -> Image.Image:
        seen.append(img.size)
        return standard_mode(img, channels)

    monkeypatch.setattr(folder, "standard_mode", spy)
    small = decode_image(path, 32)
    assert max(seen[0]) <= 4 * 64  # not 6000 x 4000 (nor JPEG's 750 x 500 draft)
    with Image.open(path) as full:
        reference = np.asarray(fit_square(full.convert("RGB"), 32)).astype(int)
    assert np.abs(small.astype(int) - reference).mean() < 2


def test_a_high_bit_depth_picture_is_reduced_before_its_float_copy(tmp_path: Path) -> None:
    path = tmp_path / "depth.tif"
    Image.fromarray(np.full((3000, 3000), 0.5, np.float32), "F").save(path)
    tracemalloc.start()
    try:
        out = decode_image(path, 32, channels=1)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert out.shape == (32, 32, 1) and (out == 128).all()
    assert peak < 4e6  # a full-size float copy alone is 36 MB


def test_pad_reduces_by_the_long_side_and_keeps_exif_orientation(tmp_path: Path) -> None:
    arr = gradient(4000, 1000)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    Image.fromarray(arr).save(tmp_path / "turned.jpg", exif=exif)
    out = decode_image(tmp_path / "turned.jpg", 32, fit="pad")
    # Displayed upright the picture is tall: red grows downwards, in the middle columns.
    column = out[:, 16, 0].astype(int)
    assert column[2] < 40 and column[-3] > 215
    assert out.shape == (32, 32, 3)


def test_over_the_pixel_limit_is_skipped_in_one_line(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 1_000_000)
    Image.fromarray(gradient(1200, 1000)).save(tmp_path / "huge.png")
    Image.fromarray(gradient(100, 100)).save(tmp_path / "fine.png")
    loaded = load_folder_images(tmp_path, 16, progress=False)
    assert len(loaded) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["skipped 1 of 2 files (unreadable, damaged or over 1 megapixels): huge.png"]
    with pytest.raises(images.ImageTooLarge, match=r"huge.png has 1200 x 1000 pixels, over the "
                       r"limit of 1 megapixels: shrink it first"):
        decode_image(tmp_path / "huge.png", 16)
