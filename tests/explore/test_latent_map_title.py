"""The latent map's title says which images it encoded: training images, or fresh ones."""

from __future__ import annotations

from pathlib import Path

from explore_runs import EXPLORE
from PIL import Image

from latentstudio.explore.latent_map import latent_map


def test_folder_run_map_is_titled_training_images(tmp_path: Path, tiny_run) -> None:
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    for i in range(40):
        Image.new("RGB", (20, 20), (6 * i, 100, 200 - 4 * i)).save(pictures / f"p{i:02d}.png")
    run = tiny_run("vae-conv", **{**EXPLORE, "steps": 2, "data": f"folder:{pictures}",
                                  "batch_size": 8})
    result = latent_map(run, tmp_path / "map.png", n=40, grid=3)
    with Image.open(result.scatter) as im:
        title = im.info["Title"]
    assert title.startswith("Encoded training images (40 from folder:") and "test data" not in title


def test_shapes_map_is_titled_fresh_images(vae_run: Path, tmp_path: Path) -> None:
    result = latent_map(vae_run, tmp_path / "map.png", n=50, grid=3)
    with Image.open(result.scatter) as im:
        assert im.info["Title"].startswith("Encoded fresh images (50 from shapes")
