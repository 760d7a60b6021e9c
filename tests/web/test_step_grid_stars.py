"""Cells of preview grids named by step (samples/step_NNNNNN.png, the default cadence) can be
starred like those of epoch grids, and both kinds keep their own keys."""

from __future__ import annotations

import shutil

import numpy as np
from cli_checks import png_array
from fastapi.testclient import TestClient

from latentstudio.web.app import create_app


def test_a_cell_of_a_step_grid_is_starred_and_cropped(tiny_run, tmp_path):
    run = tiny_run("dcgan", name="steps", data="shapes:64", steps=8, batch_size=16,
                   preview_count=16, preview_every="4steps")
    root = tmp_path / "runs"
    shutil.copytree(run, root / "steps")
    with TestClient(create_app(root)) as client:
        grids = client.get("/api/runs/steps").json()["grids"]
        assert [g["name"] for g in grids] == ["step_000000", "step_000004", "step_000008"]
        item = client.post("/api/runs/steps/curated",
                           json={"source": "grid", "grid": "step_000004", "index": 5}).json()
        assert (item["grid"], item["step"], item["epoch"], item["index"]) == ("step_000004", 4, None, 5)
        grid = png_array((root / "steps" / "samples" / "step_000004.png").read_bytes())
        cell = png_array((root / "steps" / item["file"]).read_bytes())
        y, x = 2 + 1 * 34, 2 + 1 * 34  # row 1, column 1 of a 4-wide grid of 32 px cells
        assert np.array_equal(cell, grid[y:y + 32, x:x + 32])
        assert item["latent_file"]  # a grid cell keeps its latent: usable as a video keyframe
        for bad in ({"grid": "step_000099", "index": 0}, {"grid": "../config", "index": 0},
                    {"grid": "step_000004"}):
            r = client.post("/api/runs/steps/curated", json={"source": "grid", **bad})
            assert r.status_code in (404, 422), bad
