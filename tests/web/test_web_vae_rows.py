"""A VAE's preview grid says what its rows are: real, reconstruction, sample."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from latentstudio.runs import sample_grids


def test_detail_names_the_rows_and_serves_a_labelled_copy(client, runs_root: Path,
                                                           vae_run: Path) -> None:
    shutil.copytree(vae_run, runs_root / "vae", ignore=shutil.ignore_patterns("tb"))
    layout = client.get("/api/runs/vae").json()["layout"]
    assert layout["rows"][:3] == ["real", "reconstruction", "sample"]
    assert len(layout["rows"]) == 12  # 16 previews: 4 groups of real / reconstruction / sample
    assert client.get("/api/runs/tiny").json()["layout"]["rows"] == ["sample"] * 4

    epoch, grid_path = sample_grids(runs_root / "vae")[-1]
    before = grid_path.read_bytes()
    res = client.get(f"/api/runs/vae/grids/{epoch}/labelled.png")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    labelled = Image.open(io.BytesIO(res.content)).convert("L")
    with Image.open(grid_path) as grid:
        assert labelled.height == 2 * grid.height  # 32 px cells shown at 64 px
        assert labelled.width > 2 * grid.width
    margin = np.asarray(labelled)[:, :100]
    assert (margin < 128).sum() > 50  # the row names are drawn in the margin
    assert grid_path.read_bytes() == before  # the gallery's grid keeps its layout
    assert client.get("/api/runs/vae/grids/999/labelled.png").status_code == 404
