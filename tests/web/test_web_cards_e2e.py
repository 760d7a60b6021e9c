"""The runs page in headless Chromium with a VAE and a GAN side by side: cards of equal size,
FID/KID from eval.json, a first paint without JavaScript, VAE grid rows named, and the two
interpolation pickers on different favourites. Skips only when no Chromium is installed."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

RUN = "tiny"


@pytest.fixture
def two_runs(runs_root: Path, vae_run: Path) -> Path:
    shutil.copytree(vae_run, runs_root / "vae", ignore=shutil.ignore_patterns("tb"))
    (runs_root / RUN / "eval.json").write_text(json.dumps({
        "metrics": {"fid_domain": 12.5, "kid_domain": 0.0123, "precision_domain": 0.5},
        "labels": {"fid_domain": "FID (domain)", "kid_domain": "KID (domain)",
                   "precision_domain": "precision (domain)"}}))
    return runs_root


def test_vae_and_gan_cards_side_by_side(two_runs: Path, live_server: str, browser, shots) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(live_server + "/")
    vae, gan = page.locator('.card[data-run="vae"]'), page.locator(f'.card[data-run="{RUN}"]')
    expect(vae.locator("img")).to_be_visible()
    expect(gan.locator("img")).to_be_visible()
    page.wait_for_function("[...document.images].every((i) => i.complete && i.naturalWidth)")
    page.screenshot(path=str(shots / "runs-vae-gan.png"), full_page=True)
    v, g = vae.bounding_box(), gan.bounding_box()
    assert abs(v["y"] - g["y"]) < 1, "the two cards should share a row at 1280 px"
    thumb = vae.locator(".thumb").bounding_box()
    assert abs(thumb["width"] - thumb["height"]) < 2, thumb  # square, whatever the grid's shape
    assert v["height"] < 450 and g["height"] < 450, (v, g)
    expect(gan.locator(".scores")).to_have_text("KID (domain) 0.0123 · FID (domain) 12.5")


def test_runs_list_is_in_the_page_without_javascript(two_runs: Path, live_server: str,
                                                     browser) -> None:
    from playwright.sync_api import expect

    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + "/")
    expect(page.locator(".card")).to_have_count(2)
    expect(page.locator(f'.card[data-run="{RUN}"] .badge')).to_have_text("finished")
    expect(page.locator(f'.card[data-run="{RUN}"] .scores')).to_contain_text("KID (domain)")
    expect(page.locator('.card[data-run="vae"] .meta').first).to_contain_text("vae-conv")
    context.close()


def test_vae_grid_rows_are_named(two_runs: Path, live_server: str, browser, shots) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(live_server + "/#/run/vae")
    legend = page.locator("#grid-legend")
    expect(legend).to_be_visible()
    expect(legend.locator("span")).to_have_count(12)
    expect(legend.locator("span").nth(1)).to_have_text("reconstruction")
    expect(page.locator("#grid-labelled")).to_have_attribute("href", re.compile(r"^/api/runs/vae/grids/step_\d+/labelled.png$"))
    page.locator("#grids-panel").screenshot(path=str(shots / "vae-grid-legend.png"))
    page.goto(live_server + f"/#/run/{RUN}")
    expect(page.locator("#epoch-label")).to_contain_text("of")
    expect(page.locator("#grid-legend")).to_be_hidden()


def test_interpolation_pickers_start_on_different_favourites(two_runs: Path, live_server: str,
                                                             browser) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(20_000)
    page.goto(live_server + f"/#/run/{RUN}")
    expect(page.locator("#samples .tile")).to_have_count(12)
    for seed in (0, 1):  # star one, then another: as a user does
        tile = page.locator(f'#samples .tile[data-seed="{seed}"]')
        tile.locator(".star").click()
        expect(tile.locator(".star")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#interp-a option")).to_have_count(2)
    a, b = page.locator("#interp-a").input_value(), page.locator("#interp-b").input_value()
    assert a and b and a != b
    expect(page.locator("#interp-go")).to_be_enabled()
