"""Every data source at WIDTHxHEIGHT: folders cropped to the aspect ratio or padded with their
border colour, shapes drawn at any size, packs and MNIST/CIFAR fitted the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.data import load_dataset
from latentstudio.data.base import ImageSet, fit_tensor, parse_size
from latentstudio.data.folder import fit_square
from latentstudio.data.packed import save_pack
from latentstudio.data.shapes import make_shapes
from latentstudio.errors import UserError

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def stripes(width: int = 200, height: int = 100) -> Image.Image:
    """Red left, green centre (the middle quarter), blue right."""
    img = Image.new("RGB", (width, height), RED)
    img.paste(GREEN, (3 * width // 8, 0, 5 * width // 8, height))
    img.paste(BLUE, (5 * width // 8, 0, width, height))
    return img


def test_crop_takes_the_centre_at_the_target_aspect_ratio() -> None:
    tall = np.asarray(fit_square(stripes(), 16, "crop", height=64))  # 1:4 out of 2:1
    assert tall.shape == (64, 16, 3)
    assert (np.abs(tall.astype(int) - GREEN).max(axis=2) < 40).all()  # only the green middle
    wide = np.asarray(fit_square(stripes(), 64, "crop", height=32))  # the whole 2:1 picture
    assert tuple(wide[16, 2]) == RED and tuple(wide[16, 32]) == GREEN and tuple(wide[16, 61]) == BLUE


def test_pad_keeps_the_whole_picture_and_fills_with_its_border_colour() -> None:
    img = Image.new("RGB", (40, 100), WHITE)  # a white product shot, tall
    img.paste(BLUE, (10, 20, 30, 80))
    out = np.asarray(fit_square(img, 64, "pad", height=32))
    assert out.shape == (32, 64, 3)
    assert (out[:, :12] == WHITE).all() and (out[:, -12:] == WHITE).all()  # bars beside it
    assert np.abs(out[16, 32].astype(int) - BLUE).max() < 10


def test_folders_load_at_width_x_height(tmp_path: Path) -> None:
    for i in range(3):
        stripes(150 + 10 * i, 90).save(tmp_path / f"{i}.png")
    images = load_dataset(f"folder:{tmp_path}", "24x48", progress=False)
    assert images.images.shape == (3, 3, 48, 24) and images.size == (24, 48)
    square = load_dataset(f"folder:{tmp_path}", 32, progress=False)
    assert square.images.shape == (3, 3, 32, 32)


def test_shapes_draw_at_any_size_and_square_ones_are_unchanged() -> None:
    wide = make_shapes(6, 64, height=32, seed=1)
    assert wide.images.shape == (6, 3, 32, 64)
    assert torch.equal(wide.labels, make_shapes(6, 32, seed=1).labels)
    paper = torch.tensor([245, 240, 225], dtype=torch.uint8)
    corners = wide.images[:, :, [0, 0, -1, -1], [0, -1, 0, -1]].permute(0, 2, 1)
    assert (corners.int() - paper.int()).abs().max() < 60  # paper at the far corners
    assert load_dataset("shapes:2", "32x64").images.shape == (2, 3, 64, 32)
    # The pixels of square shapes are those of latentstudio 0.1 (runs and packs stay comparable).
    assert make_shapes(4, 32, seed=0, height=32).fingerprint() == "bab241a1e92450c5"


def test_fit_tensor_crops_and_pads_like_folders() -> None:
    img = torch.from_numpy(np.array(stripes(64, 32))).permute(2, 0, 1)[None].contiguous()
    cropped = fit_tensor(img, 8, 32, "crop")
    assert cropped.shape == (1, 3, 32, 8)
    assert (cropped[0, 1] > 200).all() and (cropped[0, 0] < 60).all()  # green only
    padded = fit_tensor(torch.full((1, 1, 28, 28), 7, dtype=torch.uint8), 28, 56, "pad")
    assert padded.shape == (1, 1, 56, 28) and (padded == 7).all()  # bars of the border colour


def test_packs_convert_to_another_aspect_ratio(tmp_path: Path, capsys) -> None:
    square = ImageSet(torch.from_numpy(np.array(stripes(32, 32))).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
                      .contiguous(), spec="test")
    pack = save_pack(square, tmp_path / "p.npz")
    tall = load_dataset(str(pack), "16x32", fit="crop")
    assert tall.images.shape == (2, 3, 32, 16)
    assert "holds 32 px 3-channel images; converting to 16x32 px" in capsys.readouterr().err
    assert load_dataset(str(pack), "32x16", fit="pad").images.shape == (2, 3, 16, 32)


def test_mnist_pads_or_crops_to_the_size(serve_mnist) -> None:
    serve_mnist("mnist")
    crop = load_dataset("mnist", "28x56", fit="crop", progress=False)
    pad = load_dataset("mnist", "28x56", fit="pad", progress=False)
    assert crop.images.shape == pad.images.shape == (20, 1, 56, 28)
    assert (pad.images[:, :, :14] == pad.images[:, :, :1, :1]).all()  # a bar of the border colour
    assert len(crop.labels) == 20


def test_cifar_fits_to_the_size(serve_cifar) -> None:
    assert load_dataset("cifar10", "64x32", progress=False).images.shape[1:] == (3, 32, 64)


@pytest.mark.parametrize("text", ["64x", "x64", "64*64", "-8", "abc", "6.5"])
def test_bad_sizes_say_how_to_write_one(text: str) -> None:
    with pytest.raises(UserError, match="like 64 .square. or 64x128"):
        parse_size(text)
    assert parse_size("64X128") == (64, 128) and parse_size(48) == (48, 48)


def test_pack_and_info_take_width_x_height(tmp_path, capsys):
    from latentstudio.cli import main

    out = tmp_path / "wide.npz"
    assert main(["pack", "shapes:8", "--resolution", "48x32", "--out", str(out)]) == 0
    assert "(48x32 px" in capsys.readouterr().out
    assert main(["info", str(out)]) == 0
    assert "8 images, 48x32 px" in capsys.readouterr().out
