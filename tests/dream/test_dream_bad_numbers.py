"""`dream` with nan, infinite or negative numbers, or an unsafe weights file: one line, exit 2."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest
from cli_checks import one_line_error
from PIL import Image

from latentstudio.dream import DreamConfig
from latentstudio.errors import UserError


class _Payload:
    """Unpickling this would create a folder: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def evil_weights(folder: Path) -> tuple[Path, Path]:
    """A .pt file whose pickle runs code, and the path that code would create."""
    marker = folder / "pwned"
    path = folder / "evil.pt"
    path.write_bytes(pickle.dumps({"conv.weight": _Payload(marker)}))
    return path, marker


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    Image.new("RGB", (40, 30), (90, 120, 200)).save(tmp_path / "photo.png")
    return tmp_path / "photo.png"


@pytest.mark.parametrize("flags, message", [
    (["--octave-scale", "nan"], "argument --octave-scale: expected a finite number, got nan"),
    (["--octave-scale", "inf"], "argument --octave-scale: expected a finite number, got inf"),
    (["--step", "inf"], "argument --step: expected a finite number, got inf"),
    (["--step", "-0.1"], "argument --step: must be positive"),
    (["--zoom", "nan", "--frames", "2"], "argument --zoom: expected a finite number"),
    (["--fps", "nan", "--frames", "2"], "argument --fps: expected a finite number"),
    (["--fps", "-3", "--frames", "2"], "argument --fps: must be positive"),
    (["--blend", "nan"], "argument --blend: expected a finite number"),
    (["--seed", "-1"], "argument --seed: must not be negative"),
])
def test_bad_numbers(flags: list[str], message: str, photo: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / ("d.gif" if "--frames" in flags else "d.png")
    err = one_line_error(["dream", str(photo), "--out", str(out), "--device", "cpu",
                          "--no-progress", *flags], capsys)
    assert message in err
    assert not out.exists()


@pytest.mark.parametrize("field, value", [("octave_scale", float("nan")),
                                          ("octave_scale", float("inf")),
                                          ("step", float("inf"))])
def test_the_library_refuses_them_too(field: str, value: float) -> None:
    with pytest.raises(UserError, match=f"--{field.replace('_', '-')} must"):
        DreamConfig(**{field: value})


@pytest.mark.parametrize("net", ["lite0", "googlenet"])
def test_weights_with_code_are_refused_in_one_line(net: str, photo: Path, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    evil, marker = evil_weights(tmp_path)
    err = one_line_error(["dream", str(photo), "--net", net, "--weights", str(evil),
                          "--out", str(tmp_path / "d.png"), "--device", "cpu", "--no-progress"],
                         capsys)
    assert err.startswith(f"error: refused {evil}: not ") and "published weights file" in err
    assert "weights_only" not in err
    assert not marker.exists()
