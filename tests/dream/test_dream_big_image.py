"""`dream` refuses a picture over the pixel limit in one line, before loading any network."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import png_header
from PIL import Image

from latentstudio import cli, images


def test_dream_refuses_a_20000_pixel_square_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = png_header(tmp_path / "huge.png", 20000, 20000)
    assert cli.main(["dream", str(huge), "--out", str(tmp_path / "d.png"), "--device", "cpu",
                     "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {huge} is over the limit of 179 megapixels: shrink it first "
                   "(e.g. to 4096 px on the long side)")


def test_dream_uses_the_same_limit_as_the_loader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(images, "MAX_PIXELS", 1000)
    Image.new("RGB", (40, 30)).save(tmp_path / "big.png")
    assert cli.main(["dream", str(tmp_path / "big.png"), "--out", str(tmp_path / "d.png"),
                     "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {tmp_path / 'big.png'} has 40 x 30 pixels, over the limit of "
                   "0.001 megapixels: shrink it first (e.g. to 4096 px on the long side)")
