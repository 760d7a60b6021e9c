"""Transparency out of the models: RGBA single images, grids on a checkerboard, GIF / WEBM / MOV
/ PNG frames with alpha, MP4 on white, features of composited images, and the exploration
commands on an RGBA run."""

from __future__ import annotations

import io
import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import sprites as shared_sprites
from explore_runs import EXPLORE
from PIL import Image
from torch import nn

from latentstudio import cli, images
from latentstudio.explore.animation import to_frames, write_animation
from latentstudio.metrics.extractors import Extractor


def sprites(folder: Path, count: int = 32, side: int = 16) -> Path:
    return shared_sprites(folder, count, side)


def _half_clear(n: int = 2, side: int = 16) -> torch.Tensor:
    """Red RGBA images in [-1, 1]: the left half opaque, the right half fully transparent."""
    x = torch.full((n, 4, side, side), -1.0)
    x[:, 0] = 1
    x[:, 3, :, : side // 2] = 1
    return x


# ----- pictures
def test_to_pil_keeps_alpha() -> None:
    x = _half_clear(1)[0]
    assert images.to_pil(x).mode == "RGBA"
    assert images.to_pil(x[2:]).mode == "LA"
    alpha = np.asarray(images.to_pil(x))[:, :, 3]
    assert alpha[0, 0] == 255 and alpha[0, -1] == 0


def test_grid_shows_transparency_on_a_checkerboard() -> None:
    grid = images.make_grid(_half_clear(2), nrow=2, padding=0)
    assert grid.mode == "RGB" and grid.size == (32, 16)
    px = np.asarray(grid)
    assert (px[:, :8] == (255, 0, 0)).all()  # opaque: the colour itself
    clear = px[:, 8:16]
    assert set(np.unique(clear).tolist()) == set(images.CHECKER)  # both greys of the board
    assert (clear[:, :, 0] == clear[:, :, 1]).all()  # grey, no red leaking through
    assert not (clear[0] == clear[2]).all() or not (clear[:, 0] == clear[:, 2]).all()


def test_half_transparent_pixels_blend_with_the_board() -> None:
    x = torch.zeros(1, 2, 8, 8, dtype=torch.uint8)  # black at alpha 128
    x[:, 1] = 128
    grid = np.asarray(images.make_grid(x, padding=0))
    assert set(np.unique(grid).tolist()) == {round(v * 127 / 255) for v in images.CHECKER}


def test_gif_keeps_on_off_transparency(tmp_path) -> None:
    frames = [images.to_pil(img) for img in _half_clear(3)]
    images.save_gif(frames, tmp_path / "a.gif")
    with Image.open(tmp_path / "a.gif") as gif:
        assert "transparency" in gif.info
        rgba = np.asarray(gif.convert("RGBA"))
    assert (rgba[:, :8, 3] == 255).all() and (rgba[:, 8:, 3] == 0).all()
    assert (rgba[:, :8, :3] == (255, 0, 0)).all()


def test_png_frames_keep_alpha(tmp_path) -> None:
    write_animation(to_frames(_half_clear(2), 32), tmp_path / "frames/")
    with Image.open(tmp_path / "frames" / "frame_00000.png") as frame:
        assert frame.mode == "RGBA" and frame.size == (32, 32)
        assert frame.getpixel((0, 0))[3] == 255 and frame.getpixel((31, 0))[3] == 0


def _first_frame(path: Path, out: Path) -> np.ndarray:
    ffmpeg = pytest.importorskip("imageio_ffmpeg").get_ffmpeg_exe()
    # libvpx decodes VP9's alpha (ffmpeg's own vp9 decoder drops it)
    decoder = ["-c:v", "libvpx-vp9"] if path.suffix == ".webm" else []
    subprocess.run([ffmpeg, "-y", "-loglevel", "error", *decoder, "-i", str(path), "-frames:v", "1",
                    str(out)], check=True)
    with Image.open(out) as im:
        return np.asarray(im.convert("RGBA"))


@pytest.mark.parametrize("suffix", [".webm", ".mov"])
def test_webm_and_mov_keep_alpha(suffix, tmp_path) -> None:
    pytest.importorskip("imageio_ffmpeg")
    out = write_animation(to_frames(_half_clear(4), 64), tmp_path / f"walk{suffix}", fps=4)
    px = _first_frame(out, tmp_path / "first.png")
    assert px.shape == (64, 64, 4)
    assert (px[:, 4:28, 3] > 250).all() and (px[:, 36:60, 3] < 5).all()
    assert (px[:, 4:28, 0] > 240).all() and (px[:, 4:28, 1] < 20).all()


def test_mp4_composites_on_white_and_says_so(tmp_path, capsys) -> None:
    pytest.importorskip("imageio_ffmpeg")
    out = write_animation(to_frames(_half_clear(4), 64), tmp_path / "walk.mp4", fps=4)
    assert "MP4 has no transparency" in capsys.readouterr().err
    px = _first_frame(out, tmp_path / "first.png")
    assert (px[:, 40:60, :3] > 235).all()  # white where it was clear
    assert (px[:, 4:24, 0] > 200).all() and (px[:, 4:24, 1] < 60).all()


# ----- features
def test_imagenet_extractors_see_alpha_composited_on_white() -> None:
    ex = Extractor("probe", "probe", 1, nn.Identity(), None, True)
    x = ex.prepare(_half_clear(1))
    assert x.shape == (1, 3, 16, 16)
    assert torch.allclose(x[0, :, 0, -1], torch.ones(3))  # clear: white
    assert torch.allclose(x[0, :, 0, 0], torch.tensor([1.0, -1.0, -1.0]))  # opaque: red
    assert ex.prepare(_half_clear(1)[:, 2:]).shape == (1, 3, 16, 16)  # LA: grey, then RGB
    domain = Extractor("domain", "domain", 1, nn.Identity(), None, False)
    assert domain.prepare(_half_clear(1)).shape[1] == 4  # learns on every channel


# ----- the commands on an RGBA run
RGBA = {**EXPLORE, "channels": 4, "data_limit": None}


@pytest.fixture(scope="module")
def sprite_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sprites(tmp_path_factory.mktemp("rgba") / "sprites")


@pytest.fixture(scope="module")
def rgba_run(tiny_run: Callable[..., Path], sprite_folder: Path) -> Path:
    return tiny_run("dcgan", "dcgan-rgba", **{**RGBA, "data": str(sprite_folder), "steps": 20})


def test_sample_walk_eval_nearest_and_project_on_an_rgba_run(rgba_run, sprite_folder, tmp_path,
                                                            capsys) -> None:
    run = str(rgba_run)
    assert cli.main(["sample", run, "--n", "4", "--out", str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").mode == "RGB"
    assert cli.main(["interpolate", run, "--seeds", "1,2", "--steps", "3",
                     "--out", str(tmp_path / "walk.gif")]) == 0
    with Image.open(tmp_path / "walk.gif") as gif:
        assert "transparency" in gif.info
    assert cli.main(["interpolate", run, "--seeds", "1,2", "--steps", "3",
                     "--out", f"{tmp_path / 'frames'}/"]) == 0
    assert Image.open(sorted((tmp_path / "frames").glob("*.png"))[0]).mode == "RGBA"
    assert cli.main(["eval", run, "--n", "32", "--metrics", "kid", "--no-progress"]) == 0
    assert cli.main(["nearest", run, "--n", "2", "--k", "1", "--no-progress",
                     "--out", str(tmp_path / "nn.png")]) == 0
    assert Image.open(tmp_path / "nn.png").size[0] > 0
    target = sorted(sprite_folder.glob("*.png"))[0]
    assert cli.main(["project", run, str(target), "--steps", "3", "--restarts", "1",
                     "--out", str(tmp_path / "p.pt")]) == 0
    capsys.readouterr()


def test_latent_map_and_render_on_rgba_runs(tiny_run, sprite_folder, tmp_path) -> None:
    vae = tiny_run("vae-conv", "vae-rgba", **{**RGBA, "data": str(sprite_folder), "steps": 4,
                                              "latent_dim": 2})
    assert cli.main(["latent-map", str(vae), "--n", "32", "--grid", "3",
                     "--out", str(tmp_path / "map.png")]) == 0
    cppn = tiny_run("cppn-gan", "cppn-rgba", **{**RGBA, "data": str(sprite_folder), "steps": 2})
    assert cli.main(["render", str(cppn), "--width", "48", "--out", str(tmp_path / "big.png")]) == 0
    with Image.open(tmp_path / "big.png") as big:
        assert big.mode == "RGBA" and big.size == (48, 48)


def test_interpolate_writes_webm_with_alpha_and_dreams_through_an_rgba_run(rgba_run, tmp_path,
                                                                          capsys) -> None:
    pytest.importorskip("imageio_ffmpeg")
    run = str(rgba_run)
    assert cli.main(["interpolate", run, "--seeds", "1,2", "--steps", "2", "--size", "64",
                     "--out", str(tmp_path / "walk.webm")]) == 0
    assert _first_frame(tmp_path / "walk.webm", tmp_path / "first.png").shape[2] == 4
    photo = tmp_path / "photo.png"
    Image.new("RGB", (24, 24), (200, 120, 40)).save(photo)
    assert cli.main(["dream", str(photo), "--net", f"run:{run}", "--iterations", "2", "--octaves", "1",
                     "--out", str(tmp_path / "dream.png")]) == 0
    with Image.open(tmp_path / "dream.png") as dreamt:
        assert dreamt.mode == "RGB" and dreamt.size == (24, 24)
    capsys.readouterr()


def test_latent_map_of_a_gray_alpha_vae(tiny_run, sprite_folder, tmp_path) -> None:
    vae = tiny_run("vae-conv", "vae-la", **{**RGBA, "channels": 2, "data": str(sprite_folder),
                                            "steps": 4, "latent_dim": 2})
    assert cli.main(["latent-map", str(vae), "--n", "32", "--grid", "3",
                     "--out", str(tmp_path / "map.png")]) == 0
    assert Image.open(tmp_path / "map-manifold.png").size[0] > 0


def test_the_gallery_walk_gif_keeps_alpha() -> None:
    from latentstudio.web.latent import gif_bytes

    frames = to_frames(_half_clear(2), 32)
    with Image.open(io.BytesIO(gif_bytes(frames, 4))) as gif:
        assert "transparency" in gif.info
