"""`project` refuses a picture over the pixel limit in one line, as the folder loader skips it."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import png_header

from latentstudio.cli import main


def test_project_refuses_a_20000_pixel_square_in_one_line(
        dcgan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    huge = png_header(tmp_path / "huge.png", 20000, 20000)
    assert main(["project", str(dcgan_run), str(huge), "--steps", "1",
                 "--out", str(tmp_path / "p.pt")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: {huge} is over the limit of 179 megapixels: shrink it first "
                   "(e.g. to 4096 px on the long side)")
    assert not (tmp_path / "p.pt").exists()
