"""Transparency in the data: --channels 4 (RGBA) and 2 (LA) keep a folder's alpha, packs keep it,
`info` reports it, and the default still composites on white with a one-line hint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from cli_checks import one_line_error
from cli_checks import sprites as shared_sprites
from PIL import Image, ImageDraw

from latentstudio import cli
from latentstudio.data import load_dataset
from latentstudio.data.folder import NEUTRAL
from latentstudio.data.packed import pack_dataset
from latentstudio.errors import UserError
from latentstudio.train.config import TrainConfig


def sprites(folder: Path, count: int = 8, side: int = 32) -> Path:
    return shared_sprites(folder, count, side, hidden=(0, 255, 0))


def test_channels_4_keeps_alpha_with_neutral_colour_under_clear_pixels(tmp_path, capsys):
    images = load_dataset(str(sprites(tmp_path / "s")), resolution=16, channels=4).images
    assert capsys.readouterr().err == ""
    assert images.shape == (8, 4, 16, 16)
    alpha = images[:, 3]
    assert (alpha[:, 8, 8] == 255).all() and (alpha[:, 0, 0] == 0).all()
    clear = alpha == 0
    assert (images[:, :3][clear[:, None].expand(-1, 3, -1, -1)] == NEUTRAL).all()


def test_channels_2_is_grey_plus_alpha(tmp_path):
    images = load_dataset(str(sprites(tmp_path / "s")), resolution=16, channels=2).images
    assert images.shape == (8, 2, 16, 16)
    assert (images[:, 1, 8, 8] == 255).all() and (images[:, 1, 0, 0] == 0).all()


def test_default_composites_on_white_and_says_how_to_keep_alpha(tmp_path, capsys):
    images = load_dataset(str(sprites(tmp_path / "s")), resolution=16).images
    assert images.shape == (8, 3, 16, 16) and (images[:, :, 0, 0] == 255).all()
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--channels 4 keeps the transparency" in err[0]
    load_dataset(str(sprites(tmp_path / "s")), resolution=16, channels=3)  # asked: no hint
    assert capsys.readouterr().err == ""


def test_opaque_rgba_files_get_no_hint_and_channels_4_says_it_is_not_needed(tmp_path, capsys):
    folder = tmp_path / "opaque"
    folder.mkdir()
    for i in range(3):
        Image.new("RGBA", (16, 16), (i * 50, 0, 0, 255)).save(folder / f"{i}.png")
    load_dataset(str(folder), resolution=16)
    assert capsys.readouterr().err == ""
    load_dataset(str(folder), resolution=16, channels=4)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no image" in err[0] and "--channels 3 is enough" in err[0]


def test_pad_fit_pads_a_cut_out_with_transparency(tmp_path):
    folder = tmp_path / "wide"
    folder.mkdir()
    img = Image.new("RGBA", (64, 32), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((4, 4, 59, 27), fill=(255, 0, 0, 255))
    img.save(folder / "wide.png")
    x = load_dataset(str(folder), resolution=16, channels=4, fit="pad").images[0]
    assert (x[3, :3] == 0).all() and (x[3, -3:] == 0).all()  # the bars above and below
    assert x[3, 8, 8] > 250 and tuple(x[:3, 8, 8]) == (255, 0, 0)


def test_pack_keeps_four_channels_and_converts_on_request(tmp_path):
    path, images = pack_dataset(str(sprites(tmp_path / "s")), tmp_path / "s.npz", resolution=16,
                                channels=4, progress=False)
    again = load_dataset(str(path), resolution=16)
    assert again.channels == 4 and torch.equal(again.images, images.images)
    flat = load_dataset(str(path), resolution=16, channels=3).images
    assert flat.shape == (8, 3, 16, 16) and (flat[:, :, 0, 0] == 255).all()
    grey = load_dataset(str(path), resolution=16, channels=2).images
    assert grey.shape == (8, 2, 16, 16) and torch.equal(grey[:, 1], images.images[:, 3])
    small = load_dataset(str(path), resolution=8).images
    assert small.shape == (8, 4, 8, 8) and (small[:, 3, 0, 0] == 0).all()
    assert (small[:, 3, 4, 4] == 255).all()


def test_alpha_is_refused_where_there_is_none(tmp_path):
    with pytest.raises(UserError, match="--channels 3"):
        load_dataset("shapes:4", resolution=16, channels=4)
    path, _ = pack_dataset("shapes:4", tmp_path / "shapes.npz", resolution=16)
    with pytest.raises(UserError, match="without transparency"):
        load_dataset(str(path), resolution=16, channels=4)
    with pytest.raises(UserError, match="1, 3, or 2/4"):
        load_dataset("shapes:4", resolution=16, channels=5)
    with pytest.raises(UserError, match="--channels"):
        TrainConfig(channels=5)
    TrainConfig(channels=4)
    TrainConfig(channels=2)


def test_info_and_pack_report_alpha(tmp_path, capsys):
    folder = str(sprites(tmp_path / "s"))
    out = tmp_path / "s.npz"
    assert cli.main(["pack", folder, "--resolution", "16", "--channels", "4", "--out", str(out),
                     "--no-progress"]) == 0
    assert "4 channels (RGBA)" in capsys.readouterr().out
    assert cli.main(["info", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    alpha = next(line for line in lines if line.startswith("alpha:"))
    assert "% of pixels transparent" in alpha and not alpha.startswith("alpha: 0%")
    assert cli.main(["info", folder, "--resolution", "16", "--channels", "2"]) == 0
    assert "2 channels (grey + alpha)" in capsys.readouterr().out
    assert "use --channels 3" in one_line_error(["info", "shapes:4", "--channels", "4"], capsys)


def test_a_pack_resized_on_load_keeps_clean_edges(tmp_path):
    folder = tmp_path / "red"
    folder.mkdir()
    for i in range(2):
        img = Image.new("RGBA", (32, 32), (0, 0, 0, 0))
        ImageDraw.Draw(img).ellipse((5 + i, 5, 26, 26), fill=(255, 0, 0, 255))
        img.save(folder / f"{i}.png")
    path, _ = pack_dataset(str(folder), tmp_path / "red.npz", resolution=32, channels=4,
                           progress=False)
    small = load_dataset(str(path), resolution=12).images
    edge = (small[:, 3] > 64) & (small[:, 3] < 250)
    assert edge.any()
    red, green = small[:, 0][edge], small[:, 1][edge]
    assert red.min() > 230 and green.max() < 25  # no grey from under the clear pixels
    assert (small[:, :3][(small[:, 3] == 0)[:, None].expand(-1, 3, -1, -1)] == NEUTRAL).all()
