"""Absurd numbers on the sampling and exploration commands: one `error:` line, exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_checks import one_line_error


@pytest.mark.parametrize("flags, message", [
    (["--n", "100000000", "--out", "{tmp}/grid.png"], "a grid holds at most 1024 images"),
    (["--n", "100000000", "--out", "{tmp}/many/"], "at most 10000 images per call"),
    (["--truncation", "nan", "--out", "{tmp}/s.png"], "--truncation must be a finite number >= 0"),
    (["--truncation", "inf", "--out", "{tmp}/s.png"], "--truncation must be a finite number >= 0"),
    (["--truncation", "-1", "--out", "{tmp}/s.png"], "--truncation must be"),
])
def test_sample(flags: list[str], message: str, dcgan_run: Path, tmp_path: Path,
                capsys: pytest.CaptureFixture[str]) -> None:
    flags = [f.format(tmp=tmp_path) for f in flags]
    assert message in one_line_error(["sample", str(dcgan_run), *flags], capsys)
    assert not any(tmp_path.iterdir())  # refused before writing anything


@pytest.mark.parametrize("flags, message", [
    (["--steps", "100000000"], "100000001 frames; at most 5000 per animation"),
    (["--steps", "3000", "--size", "1024"], "megapixels per animation: lower --steps or --size"),
    (["--truncation", "nan"], "argument --truncation: expected a finite number, got nan"),
    (["--truncation", "-0.5"], "argument --truncation: must not be negative"),
    (["--fps", "inf"], "argument --fps: expected a finite number, got inf"),
    (["--fps", "nan"], "argument --fps: expected a finite number"),
])
def test_interpolate(flags: list[str], message: str, dcgan_run: Path, tmp_path: Path,
                     capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["interpolate", str(dcgan_run), "--seeds", "1,2", "--out", str(tmp_path / "w.gif")]
    assert message in one_line_error([*argv, *flags], capsys)
    assert not (tmp_path / "w.gif").exists()


def test_interpolate_library_checks_the_frame_count(dcgan_run: Path, tmp_path: Path) -> None:
    from latentstudio.errors import UserError
    from latentstudio.explore.interpolate import interpolate

    with pytest.raises(UserError, match="at most 5000 per animation"):
        interpolate(dcgan_run, "1,2,3", tmp_path / "w.gif", steps=2501, loop=True)
    with pytest.raises(UserError, match="--truncation must be a finite number"):
        interpolate(dcgan_run, "1,2", tmp_path / "w.gif", truncation=float("nan"))


@pytest.mark.parametrize("argv, message", [
    (["render", "{run}", "--truncation", "inf"], "argument --truncation: expected a finite"),
    (["cppn", "--scale", "inf", "--width", "8"], "argument --scale: expected a finite number"),
    (["cppn", "--scale", "nan", "--width", "8"], "argument --scale: expected a finite number"),
    (["cppn", "--seed", "-1", "--width", "8"], "argument --seed: must not be negative"),
    (["vector", "{run}", "--from-class", "0", "--to-class", "1", "--seed", "-2"],
     "argument --seed: must not be negative"),
    (["project", "{run}", "x.png", "--seed", "-1"], "argument --seed: must not be negative"),
])
def test_other_explore_numbers(argv: list[str], message: str, dcgan_run: Path, tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    argv = [a.format(run=dcgan_run) for a in argv] + ["--out", str(tmp_path / "o.png")]
    assert message in one_line_error(argv, capsys)
    assert not (tmp_path / "o.png").exists()
