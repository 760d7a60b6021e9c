"""The exploration commands: --help with an example, one-line errors, end-to-end runs."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio.cli import main

COMMANDS = ["interpolate", "vector", "project", "latent-map", "render", "cppn"]


def error_of(argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err  # one line, no traceback
    return err


def test_clear_errors(dcgan_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = str(dcgan_run)
    blocked = tmp_path / "file"
    blocked.write_text("")
    assert "neither a seed" in error_of(["interpolate", run, "--seeds", "3,x", "--out",
                                         str(tmp_path / "w.gif")], capsys)
    assert "cannot write" in error_of(["interpolate", run, "--seeds", "3,4", "--out",
                                       str(blocked / "w.gif")], capsys)
    assert "not a latentstudio run folder" in error_of(["project", str(tmp_path), "x.png"], capsys)
    assert "needs a VAE run" in error_of(["latent-map", run, "--out", str(tmp_path / "m")], capsys)
    assert "cppn-gan" in error_of(["render", run, "--out", str(tmp_path / "r.png")], capsys)
    assert "either --from-class" in error_of(["vector", run, "--out", str(tmp_path / "v.pt")], capsys)
    assert "cannot write" in error_of(["cppn", "--width", "8", "--out", str(blocked / "c.png")], capsys)
    assert "does not exist" in error_of(["sample", run, "--add", str(tmp_path / "nope.pt")], capsys)
    assert "truncation" in error_of(["sample", run, "--truncation", "-1", "--out",
                                     str(tmp_path / "s.png")], capsys)


def test_a_session_with_the_commands(dcgan_run: Path, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = str(dcgan_run)
    assert main(["sample", run, "--n", "1", "--seed", "4", "--out", str(tmp_path / "one/")]) == 0
    image = next((tmp_path / "one").glob("*.png"))
    assert main(["project", run, str(image), "--steps", "20", "--restarts", "2",
                 "--out", str(tmp_path / "me.pt")]) == 0
    assert (tmp_path / "me.png").is_file()
    assert main(["vector", run, "--positive", "1,2", "--positive", "3", "--negative", "4",
                 "--out", str(tmp_path / "v.pt")]) == 0
    with Image.open(tmp_path / "v.png") as grid:
        assert grid.size == (5 * 18 + 2, 4 * 18 + 2)  # 4 seeds x 5 strengths
    assert main(["interpolate", run, "--seeds", f"{tmp_path / 'me.pt'},7", "--steps", "3", "--loop",
                 "--out", str(tmp_path / "walk.gif")]) == 0
    assert main(["sample", run, "--n", "4", "--add", f"{tmp_path / 'v.pt'}:1.5", "--truncation", "0.7",
                 "--out", str(tmp_path / "s.png")]) == 0
    assert main(["cppn", "--seed", "1", "--width", "40", "--height", "20", "--out",
                 str(tmp_path / "c.png")]) == 0
    with Image.open(tmp_path / "c.png") as im:
        assert im.size == (40, 20)
    out = capsys.readouterr().out
    assert "wrote" in out and "apply it: latentstudio sample" in out


def test_cgan_class_vector_command(cgan_run: Path, tmp_path: Path) -> None:
    assert main(["vector", str(cgan_run), "--from-class", "circle", "--to-class", "line",
                 "--out", str(tmp_path / "line.pt")]) == 0
    saved = torch.load(tmp_path / "line.pt", weights_only=True)
    assert saved["label"] == 0 and saved["embedding"] is not None


def test_latent_map_and_render_commands(vae_run: Path, cppn_run: Path, tmp_path: Path) -> None:
    assert main(["latent-map", str(vae_run), "--n", "50", "--grid", "4", "--out", str(tmp_path / "m")]) == 0
    assert (tmp_path / "m-scatter.png").is_file() and (tmp_path / "m-manifold.png").is_file()
    assert main(["render", str(cppn_run), "--width", "64", "--seed", "2", "--out",
                 str(tmp_path / "r.png")]) == 0
    with Image.open(tmp_path / "r.png") as im:
        assert im.size == (64, 64)
