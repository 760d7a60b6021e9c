"""The issue's own case: a 64 wide x 128 high DCGAN run (tiny width, a few steps) through sample,
interpolate, project, eval and the gallery."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from cli_checks import png_array
from fastapi.testclient import TestClient
from PIL import Image

from latentstudio.cli import main
from latentstudio.web.app import create_app

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture
def run(tiny_run) -> Path:
    return tiny_run("dcgan", name="dcgan-64x128", resolution="64x128", data="shapes:32", width=4,
                    latent_dim=8, batch_size=16, steps=4, preview_count=4)


def test_sample_interpolate_project_eval_and_gallery(run: Path, tmp_path: Path, capsys) -> None:
    singles = tmp_path / "singles"
    assert main(["sample", str(run), "--seeds", "0-1", "--out", f"{singles}/"]) == 0
    for png in sorted(singles.glob("*.png")):
        with Image.open(png) as im:
            assert im.size == (64, 128)
    assert main(["interpolate", str(run), "--seeds", "1,2", "--steps", "2",
                 "--out", f"{tmp_path / 'frames'}/"]) == 0
    with Image.open(sorted((tmp_path / "frames").glob("*.png"))[0]) as im:
        assert im.size == (64, 128)
    target = tmp_path / "photo.png"
    Image.new("RGB", (90, 120), (200, 60, 60)).save(target)
    assert main(["project", str(run), str(target), "--steps", "2", "--restarts", "1",
                 "--out", str(tmp_path / "p.pt")]) == 0
    with Image.open(tmp_path / "p.png") as side_by_side:  # target | result, both 64 x 128
        assert side_by_side.height > side_by_side.width / 2
    assert main(["eval", str(run), "--n", "16", "--metrics", "fid,kid", "--extractor", "lite0",
                 "--no-progress"]) == 0
    assert "FID (lite0)" in capsys.readouterr().out
    root = tmp_path / "runs"
    shutil.copytree(run, root / "wide", ignore=shutil.ignore_patterns("tb", "eval.json"))
    with TestClient(create_app(root)) as client:
        detail = client.get("/api/runs/wide").json()
        layout = detail["layout"]
        assert (layout["cell"], layout["cell_height"]) == (64, 128)
        grid = detail["grids"][-1]
        item = client.post("/api/runs/wide/curated",
                           json={"source": "grid", "grid": grid["name"], "index": 1}).json()
        cell = png_array((root / "wide" / item["file"]).read_bytes())
        assert cell.shape[:2] == (128, 64)
    capsys.readouterr()
