"""The gallery with a non-square (16 wide x 32 high) run: its page, its grid's layout, starring a
cell (cut out as a 16x32 picture), the labelled grid and rendered latents."""

from __future__ import annotations

import io
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentstudio.runs import sample_grids

W, H = 16, 32
NAME = "tall"


@pytest.fixture
def tall(tiny_run: Callable[..., Path], runs_root: Path) -> Path:
    run = tiny_run("dcgan", name="dcgan-16x32", resolution=f"{W}x{H}", data="shapes:64")
    shutil.copytree(run, runs_root / NAME, ignore=shutil.ignore_patterns("tb"))
    return runs_root / NAME


def test_run_page_lays_the_grid_out_in_tall_cells(client, tall: Path) -> None:
    listed = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert listed[NAME]["resolution"] == "16x32"
    assert "16x32 px" in client.get("/").text
    d = client.get(f"/api/runs/{NAME}").json()
    layout = d["layout"]
    assert (layout["cell"], layout["cell_height"], layout["per_row"], layout["count"]) == (W, H, 2, 4)
    name, grid_path = sample_grids(tall)[-1]
    with Image.open(grid_path) as grid:
        pad = layout["padding"]
        assert grid.size == (2 * (W + pad) + pad, 2 * (H + pad) + pad)
    res = client.get(f"/api/runs/{NAME}/grids/{name}/labelled.png")
    assert res.status_code == 200
    with Image.open(grid_path) as grid:
        assert Image.open(io.BytesIO(res.content)).height == 4 * grid.height  # 16 px wide -> 64 px


def test_starring_a_cell_cuts_out_that_tall_cell(client, tall: Path) -> None:
    name, grid_path = sample_grids(tall)[-1]
    res = client.post(f"/api/runs/{NAME}/curated", json={"source": "grid", "grid": name, "index": 3})
    assert res.status_code == 201, res.text
    item = res.json()
    picture = Image.open(io.BytesIO(client.get(item["url"]).content)).convert("RGB")
    assert picture.size == (W, H)
    with Image.open(grid_path) as grid:  # cell 3: second row, second column
        x, y = 2 + 1 * (W + 2), 2 + 1 * (H + 2)
        expected = np.asarray(grid.convert("RGB").crop((x, y, x + W, y + H)))
    assert np.array_equal(np.asarray(picture), expected)


def test_rendered_latents_and_samples_are_tall(client, tall: Path) -> None:
    import base64

    def size(url: str) -> tuple[int, int]:
        return Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))).size

    rendered = client.post(f"/api/runs/{NAME}/render", json={"seed": 5}).json()
    assert size(rendered["image"]) == (W, H)
    samples = client.get(f"/api/runs/{NAME}/samples?seed=0&n=2").json()["samples"]
    assert [size(s["image"]) for s in samples] == [(W, H)] * 2


def test_clicking_a_tall_cell_in_the_browser_stars_that_cell(tall: Path, live_server, browser) -> None:
    import json
    import re

    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(f"{live_server}/#/run/{NAME}")
    expect(page.locator("#run-name")).to_contain_text(NAME)
    grid = page.locator("#grid-image")
    expect(grid).to_be_visible()
    page.wait_for_function("document.getElementById('grid-image').naturalWidth > 0")
    box = grid.bounding_box()
    width, height = 2 * (W + 2) + 2, 2 * (H + 2) + 2
    # The middle of cell 3 (second row, second column).
    grid.click(position={"x": box["width"] * (2 + W + 2 + W / 2) / width,
                         "y": box["height"] * (2 + H + 2 + H / 2) / height})
    expect(page.locator("#grid-view .mark")).to_have_count(1)
    items = json.loads((tall / "curated.json").read_text())["items"]
    assert [(i["source"], i["index"]) for i in items] == [("grid", 3)]
    # The star sits at the cell's top-left corner: (2 + W + 2) / width, (2 + H + 2) / height.
    expect(page.locator("#grid-view .mark")).to_have_attribute(
        "style", re.compile(r"left:52\.63\d*%;top:51\.42\d*%"))
