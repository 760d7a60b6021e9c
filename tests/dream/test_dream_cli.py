"""`latentstudio dream` end to end on tiny images with the offline EfficientNet-Lite0."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from latentstudio import cli

FAST = ["--octaves", "2", "--iterations", "2", "--no-progress", "--device", "cpu"]


@pytest.fixture
def photo(tmp_path):
    rng = np.random.default_rng(0)
    arr = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
    path = tmp_path / "photo.jpg"
    Image.fromarray(arr).save(path)
    return path


def test_dream_writes_a_png_of_the_input_size(photo, tmp_path, capsys):
    out = tmp_path / "dream.png"
    assert cli.main(["dream", str(photo), "--out", str(out), "--layer", "block4",
                     "--channels", "0-5,20", "--keep-colors", *FAST]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.format == "PNG" and img.size == (56, 40) and img.mode == "RGB"
        dreamed = np.asarray(img, dtype=np.int16)
    with Image.open(photo) as img:
        assert np.abs(dreamed - np.asarray(img, dtype=np.int16)).mean() > 1


def test_default_output_name_and_gray_input(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((33, 47), 128, np.uint8), "L").save(tmp_path / "gray.png")
    assert cli.main(["dream", "gray.png", *FAST]) == 0
    with Image.open(tmp_path / "gray_dream.png") as img:
        assert img.mode == "L" and img.size == (47, 33)


def test_zoom_frames_make_a_gif(photo, tmp_path):
    out = tmp_path / "zoom.gif"
    assert cli.main(["dream", str(photo), "--frames", "3", "--zoom", "1.1", "--out", str(out),
                     "--octaves", "1", "--iterations", "1", "--no-progress"]) == 0
    with Image.open(out) as img:
        assert img.n_frames == 3 and img.size == (56, 40)


def test_zoom_frames_make_an_mp4(photo, tmp_path):
    pytest.importorskip("imageio_ffmpeg")
    out = tmp_path / "zoom.mp4"
    assert cli.main(["dream", str(photo), "--frames", "2", "--out", str(out),
                     "--octaves", "1", "--iterations", "1", "--no-progress"]) == 0
    assert out.stat().st_size > 100


@pytest.mark.parametrize("args,message", [
    (["--layer", "block99"], "valid layers: block0, block1"),
    (["--channels", "0-999"], "valid are 0-"),
    (["--net", "alexnet"], "lite0, googlenet, run:RUN"),
    (["--frames", "3"], "needs a .gif or .mp4"),
    (["--octave-scale", "0.5"], "--octave-scale"),
])
def test_user_errors_are_one_line_exit_2(photo, tmp_path, capsys, args, message):
    assert cli.main(["dream", str(photo), "--out", str(tmp_path / "o.png"), *FAST, *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


def test_missing_input_is_a_user_error(tmp_path, capsys):
    assert cli.main(["dream", str(tmp_path / "none.jpg"), *FAST]) == 2
    assert "not found" in capsys.readouterr().err
