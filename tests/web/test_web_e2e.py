"""End to end in a real browser: Debian's Chromium, headless, driven by Playwright against a live
server. Opens the runs page, opens a run, stars a sample and a grid cell, reloads and sees both
still starred, moves a latent slider and sees the picture change. Screenshots go to a temp dir
(or $LATENTSTUDIO_SCREENSHOTS). Skips only when no Chromium is installed."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil

import numpy as np
from PIL import Image

RUN = "tiny"
def decode(data_url: str) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data_url.split(",", 1)[1]))).convert("RGB"))


def test_browse_star_reload_and_play(live_server, runs_root, shots, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
            if m.type == "error" else None)
    outside: list[str] = []

    def only_local(route) -> None:  # the page must work offline: no CDN, no fonts
        if route.request.url.startswith(live_server):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    page.route("**/*", only_local)

    # Runs page
    page.goto(live_server + "/")
    card = page.locator(f'.card[data-run="{RUN}"]')
    expect(card).to_be_visible()
    expect(card.locator(".badge")).to_have_text("finished")
    page.screenshot(path=str(shots / "01-runs.png"), full_page=True)

    # Run page: grids, samples and the play image load
    card.click()
    expect(page.locator("#run-name")).to_contain_text(RUN)
    expect(page.locator("#samples .tile")).to_have_count(12)
    expect(page.locator("#play-image")).to_have_attribute("src", _data_png())
    expect(page.locator("#epoch-label")).to_contain_text("4 of 4")
    page.screenshot(path=str(shots / "02-run.png"), full_page=True)

    # Star the first sample and one cell of the preview grid
    first = page.locator('#samples .tile[data-seed="0"]')
    first.locator(".star").click()
    expect(first.locator(".star")).to_have_attribute("aria-pressed", "true")
    grid = page.locator("#grid-image")
    box = grid.bounding_box()
    size = 4 * 34 + 2  # 4x4 cells of 32 px with 2 px padding
    grid.click(position={"x": box["width"] * (2 + 34 + 16) / size, "y": box["height"] * (2 + 16) / size})
    expect(page.locator("#grid-view .mark")).to_have_count(1)
    expect(page.locator("#favourites .tile")).to_have_count(2)
    items = json.loads((runs_root / RUN / "curated.json").read_text())["items"]
    assert sorted((i["source"], i.get("seed"), i.get("index")) for i in items) == \
        [("grid", None, 1), ("latent", 0, None)]

    # Reload: both are still starred
    page.reload()
    expect(page.locator("#samples .tile")).to_have_count(12)
    expect(page.locator('#samples .tile[data-seed="0"] .star')).to_have_attribute("aria-pressed", "true")
    expect(page.locator('#samples .tile[data-seed="1"] .star')).to_have_attribute("aria-pressed", "false")
    expect(page.locator("#grid-view .mark")).to_have_count(1)
    expect(page.locator("#favourites .tile")).to_have_count(2)
    page.screenshot(path=str(shots / "03-reloaded.png"), full_page=True)

    # Play: moving a latent slider changes the picture
    play = page.locator("#play-image")
    expect(play).to_have_attribute("src", _data_png())
    before = play.get_attribute("src")
    page.locator("#dir-0").fill("3")
    expect(page.locator("#dir-0-value")).to_have_text("3.00")
    expect(play).not_to_have_attribute("src", before)
    after = play.get_attribute("src")
    assert np.abs(decode(after).astype(int) - decode(before)).sum() > 0
    page.locator("#play-panel").screenshot(path=str(shots / "04-play.png"))

    # Interpolate between the two starred latents and offer the GIF
    page.locator("#interp-go").click()
    expect(page.locator("#interp-download")).to_have_attribute("href", re.compile("^blob:"))

    # Live refresh: a new epoch grid and new metrics appear without reloading
    run = runs_root / RUN
    shutil.copy(run / "samples" / "epoch_0003.png", run / "samples" / "epoch_0004.png")
    with open(run / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 16, "epoch": 4, "loss_d": 0.7, "loss_g": 1.1}) + "\n")
    expect(page.locator("#epoch-label")).to_contain_text("5 of 5", timeout=10_000)
    expect(page.locator("#run-meta")).to_contain_text("step 16")

    # Favourites page across runs
    page.goto(live_server + "/#/curated")
    expect(page.locator(f'section[data-run="{RUN}"] .tile')).to_have_count(2)
    page.screenshot(path=str(shots / "05-favourites.png"), full_page=True)
    assert problems == []
    assert outside == []
    print(f"\nscreenshots in {shots}")
    assert len(list(shots.glob("*.png"))) == 5


def _data_png() -> re.Pattern:
    return re.compile(r"^data:image/png;base64,")
