"""A non-square (16 wide x 32 high) DCGAN run through every command that reads runs: sample,
interpolate (GIF, MP4, frames), project and dream --net run: (eval and nearest: in
tests/metrics/test_metrics_aspect.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from latentstudio.cli import main
from latentstudio.explore.project import load_target, project
from latentstudio.runs import load_run

pytestmark = pytest.mark.usefixtures("one_thread")
W, H = 16, 32


@pytest.fixture
def run(tiny_run) -> Path:
    return tiny_run("dcgan", name="dcgan-16x32", resolution=f"{W}x{H}", data="shapes:64")


def test_the_run_records_its_size_and_makes_tall_images(run: Path) -> None:
    loaded = load_run(run)
    assert loaded.config.resolution == "16x32" and loaded.model_config.size == (W, H)
    assert loaded.sample(3).shape == (3, 3, H, W)
    assert loaded.dataset().images.shape[1:] == (3, H, W)


def test_sample_grid_has_tall_cells_and_singles_keep_their_pixels(run: Path, tmp_path: Path,
                                                                  capsys) -> None:
    grid = tmp_path / "grid.png"
    assert main(["sample", str(run), "--n", "6", "--nrow", "3", "--size", "native",
                 "--out", str(grid)]) == 0
    with Image.open(grid) as im:
        assert im.size == (3 * (W + 2) + 2, 2 * (H + 2) + 2)
    assert main(["sample", str(run), "--n", "6", "--nrow", "3", "--out", str(grid)]) == 0
    with Image.open(grid) as im:  # enlarged for viewing: the longer side reaches 512 px
        assert max(im.size) >= 512 and abs(im.width / im.height - 56 / 70) < 0.02
    singles = tmp_path / "singles"
    assert main(["sample", str(run), "--n", "2", "--out", f"{singles}/"]) == 0
    for png in sorted(singles.glob("*.png")):
        with Image.open(png) as im:
            assert im.size == (W, H)


def test_interpolate_keeps_the_ratio_in_gifs_videos_and_frames(run: Path, tmp_path: Path) -> None:
    gif = tmp_path / "walk.gif"
    assert main(["interpolate", str(run), "--seeds", "1,2", "--steps", "3", "--out", str(gif)]) == 0
    with Image.open(gif) as im:
        assert im.size == (256, 512)  # 16x32 enlarged 16 times
    frames = tmp_path / "frames"
    assert main(["interpolate", str(run), "--seeds", "1,2", "--steps", "3", "--out", f"{frames}/"]) == 0
    with Image.open(sorted(frames.glob("*.png"))[0]) as im:
        assert im.size == (W, H)
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    mp4 = tmp_path / "walk.mp4"
    assert main(["interpolate", str(run), "--seeds", "1,2", "--steps", "3", "--size", "100",
                 "--out", str(mp4)]) == 0
    reader = imageio_ffmpeg.read_frames(str(mp4))
    meta = next(reader)
    reader.close()
    assert tuple(meta["size"]) == (56, 112)  # the longer side a multiple of 16, the ratio kept


def test_project_fits_a_target_of_another_shape_to_the_run(run: Path, tmp_path: Path) -> None:
    loaded = load_run(run)
    picture = tmp_path / "wide.png"
    Image.new("RGB", (90, 60), (200, 30, 30)).save(picture)
    target = load_target(loaded, picture)
    assert target.shape == (3, H, W)
    result = project(loaded, target, steps=3, restarts=1)
    assert result.image.shape == (3, H, W) and result.z.shape == (16,)
    out = tmp_path / "p.pt"
    assert main(["project", str(run), str(picture), "--steps", "3", "--restarts", "1",
                 "--out", str(out)]) == 0
    with Image.open(out.with_suffix(".png")) as im:  # target | result, side by side
        assert im.height > im.width / 2


def test_dream_through_a_non_square_run(run: Path, tmp_path: Path) -> None:
    picture = tmp_path / "in.png"
    Image.new("RGB", (40, 50), (120, 90, 200)).save(picture)
    out = tmp_path / "dream.png"
    assert main(["dream", str(picture), "--net", f"run:{run}", "--octaves", "1",
                 "--iterations", "2", "--out", str(out)]) == 0
    from latentstudio.dream.run_net import load_run_net

    net = load_run_net(run)
    assert net.probe_size == H  # every layer's map is at least as large as in training
    assert list(net.layers)[-1] == "head"


def test_latent_map_of_a_non_square_vae(tiny_run, tmp_path: Path) -> None:
    from latentstudio.explore.latent_map import latent_map

    vae = tiny_run("vae-conv", name="vae-conv-aspect", resolution=f"{W}x{H}", steps=1, batch_size=8,
                   data="shapes:16", preview_count=4)
    result = latent_map(vae, tmp_path / "map.png", n=16, grid=3)
    assert len(result.coords) == 16
    with Image.open(result.manifold) as im:
        assert im.size[0] > 100
