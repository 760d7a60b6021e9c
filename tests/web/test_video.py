"""The gallery's "Make a video" panel: favourites become the keyframes of a walk rendered in the
background (the code behind `latentstudio interpolate`) into RUN/videos/. The endpoint's
refusals (bad order, no favourites, a render already running, a run folder that cannot be
written), then the whole thing in headless Chromium: star three samples, reorder, render, watch
the progress, and read the MP4 back frame by frame."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from latentstudio import atomic
from latentstudio.explore.interpolate import frame_count

RUN = "tiny"


def star(client, seed: int) -> str:
    r = client.post(f"/api/runs/{RUN}/curated", json={"seed": seed})
    assert r.status_code == 201
    return r.json()["id"]


def wait_for(client, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = client.get(f"/api/runs/{RUN}/videos/job").json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"the render did not finish: {job}")


def read_frames(path: Path) -> tuple[tuple[int, int], list[np.ndarray]]:
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return (w, h), [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]


def favourites_shown(frames: dict[int, np.ndarray], run: Path, ids: list[str]) -> dict[int, str]:
    """For frames that rest on keyframes, the favourite each one shows. The tiny run's pictures are
    nearly flat grey, so this compares what sets each apart from the others (their correlation
    after removing the mean picture), which the codec's noise does not blur."""
    favs = {}
    side = next(iter(frames.values())).shape[1::-1]
    for iid in ids:
        with Image.open(run / "curated" / f"{iid}.png") as im:
            favs[iid] = np.asarray(im.convert("RGB").resize(side, Image.NEAREST)).astype(float)
    mean_fav = np.mean(list(favs.values()), axis=0)
    mean_frame = np.mean([f.astype(float) for f in frames.values()], axis=0)
    shown = {}
    for n, frame in frames.items():
        own = (frame - mean_frame).ravel()
        corr = {k: np.corrcoef(own, (v - mean_fav).ravel())[0, 1] for k, v in favs.items()}
        best = max(corr, key=corr.get)
        assert corr[best] > 0.2, (n, corr)
        shown[n] = best
    return shown


def test_no_favourites_and_bad_orders_are_clear_400s(client, runs_root):
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": []})
    assert r.status_code == 400 and "star at least two" in r.json()["detail"]
    a, b = star(client, 1), star(client, 2)
    grid = client.post(f"/api/runs/{RUN}/curated", json={"source": "grid", "epoch": 1, "index": 0})
    assert grid.status_code == 201
    cases = [
        ([a], "at least two favourites"),
        ([a, "0123456789ab"], "item 2 of the order ('0123456789ab') is not a favourite of this run"),
        ([a, a, b], "repeats"),
    ]
    for items, message in cases:
        r = client.post(f"/api/runs/{RUN}/videos", json={"items": items})
        assert r.status_code == 400, items
        assert message in r.json()["detail"] and "\n" not in r.json()["detail"]
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": [a, b, a, b, a], "steps": 600, "hold": 600})
    assert r.status_code == 400 and "would have 5401 frames" in r.json()["detail"]
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": [a, b], "name": "../x"})
    assert r.status_code == 400 and "video name" in r.json()["detail"]
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": [a, b], "easing": "bounce"})
    assert r.status_code == 422
    assert not (runs_root / RUN / "videos").exists()  # nothing written by a refusal
    assert client.get(f"/api/runs/{RUN}/videos/job").json() == {"state": "idle"}


def test_render_gif_in_the_background_and_list_it(client, runs_root):
    ids = [star(client, s) for s in (1, 2, 3)]
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": [ids[2], ids[0], ids[1]], "steps": 3,
                                                      "hold": 2, "easing": "cubic", "format": "gif",
                                                      "name": "trio"})
    assert r.status_code == 202
    assert r.json()["total"] == frame_count(3, 3, hold=2) == 13
    job = wait_for(client)
    assert job["state"] == "done", job
    assert (job["done"], job["total"], job["name"], job["items"]) == (13, 13, "trio.gif", [ids[2], ids[0], ids[1]])
    path = runs_root / RUN / "videos" / "trio.gif"
    with Image.open(path) as gif:  # identical consecutive frames are merged into longer ones
        durations, pictures = [], []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
            pictures.append(np.asarray(gif.convert("RGB")))
    unit = min(durations)
    assert sum(durations) == 13 * unit and max(durations) >= 3 * unit
    shown = np.repeat(np.arange(len(durations)), np.array(durations) // unit)  # frame -> GIF frame
    # 3 frames a transition, 2 held: the keyframes rest on frames 0-2, 5-7 and 10-12.
    keys_at = {1: ids[2], 6: ids[0], 11: ids[1]}
    assert favourites_shown({f: pictures[shown[f]] for f in keys_at}, runs_root / RUN, ids) == keys_at
    listed = client.get(f"/api/runs/{RUN}/videos").json()["videos"]
    assert [v["name"] for v in listed] == ["trio.gif"]
    got = client.get(listed[0]["url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/gif"
    assert got.content == path.read_bytes()
    for bad in ("..%2Fconfig.json", "trio.pt", ".trio.gif", "missing.mp4"):
        assert client.get(f"/api/runs/{RUN}/videos/{bad}").status_code == 404


def test_one_render_at_a_time_per_run(client, runs_root, monkeypatch):
    from latentstudio.explore import interpolate

    ids = [star(client, s) for s in (1, 2)]
    release = threading.Event()
    write = interpolate.write_walk

    def slow(*args, **kwargs):
        release.wait(30)
        return write(*args, **kwargs)

    monkeypatch.setattr(interpolate, "write_walk", slow)
    body = {"items": ids, "steps": 2, "format": "gif"}
    assert client.post(f"/api/runs/{RUN}/videos", json=body).status_code == 202
    r = client.post(f"/api/runs/{RUN}/videos", json=body)
    assert r.status_code == 409 and "being rendered" in r.json()["detail"]
    release.set()
    assert wait_for(client)["state"] == "done"
    assert client.post(f"/api/runs/{RUN}/videos", json=body).status_code == 202
    assert wait_for(client)["state"] == "done"
    assert len(list((runs_root / RUN / "videos").glob("walk-*.gif"))) == 2  # default names differ


@pytest.mark.parametrize("code,status,cause", [(errno.ENOSPC, 507, "no space left"),
                                               (errno.EROFS, 403, "read-only file system")])
def test_refused_writes_answer_before_any_work(client, runs_root, monkeypatch, code, status, cause):
    ids = [star(client, s) for s in (1, 2)]

    def failing(path, data):
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(atomic, "write_bytes", failing)
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": ids})
    assert r.status_code == status
    assert cause in r.json()["detail"] and str(runs_root / RUN / "videos") in r.json()["detail"]
    assert client.get(f"/api/runs/{RUN}/videos/job").json() == {"state": "idle"}


def test_a_write_refused_mid_render_is_reported_by_the_job(client, runs_root, monkeypatch):
    ids = [star(client, s) for s in (1, 2)]
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": ids, "steps": 2, "format": "gif"})
    assert r.status_code == 202
    wait_for(client)
    write = atomic.write_bytes

    def full_for_gifs(path, data):
        if str(path).endswith(".gif"):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return write(path, data)

    monkeypatch.setattr(atomic, "write_bytes", full_for_gifs)
    assert client.post(f"/api/runs/{RUN}/videos", json={"items": ids, "steps": 2, "format": "gif"}).status_code == 202
    job = wait_for(client)
    assert job["state"] == "failed" and job["status"] == 507 and "no space left" in job["error"]


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="needs file permissions to apply")
def test_read_only_run_folder_is_403(client, runs_root):
    ids = [star(client, s) for s in (1, 2)]
    run = runs_root / RUN
    run.chmod(0o555)
    try:
        r = client.post(f"/api/runs/{RUN}/videos", json={"items": ids})
    finally:
        run.chmod(0o755)
    assert r.status_code == 403 and "permission denied" in r.json()["detail"]
    assert not (run / "videos").exists()


def test_make_a_video_in_the_browser(live_server, runs_root, shots, browser):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    page.set_default_timeout(30_000)
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
    page.goto(f"{live_server}/#/run/{RUN}")
    expect(page.locator("#samples .tile")).to_have_count(12)
    expect(page.locator("#video-order li")).to_have_count(1)  # the "star at least two" hint
    expect(page.locator("#video-render")).to_be_disabled()

    for seed in (0, 1, 2):
        page.locator(f'#samples .tile[data-seed="{seed}"] .star').click()
        expect(page.locator(f'#samples .tile[data-seed="{seed}"] .star')).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#video-order li")).to_have_count(3)
    ids = page.locator("#video-order li").evaluate_all("els => els.map(e => e.dataset.id)")
    # Move the third favourite (seed 2) one up: the order becomes seeds 0, 2, 1.
    page.locator("#video-order li").nth(2).locator("button.up").click()
    order = [ids[0], ids[2], ids[1]]
    expect(page.locator("#video-order li").nth(1)).to_have_attribute("data-id", ids[2])

    steps, hold = 4, 2
    page.locator("#video-steps").fill(str(steps))
    page.locator("#video-hold").fill(str(hold))
    page.locator("#video-fps").fill("12")
    page.locator("#video-easing").select_option("smooth")
    page.locator("#video-format").select_option("mp4")
    expected = frame_count(3, steps, hold=hold)
    assert expected == (3 - 1) * steps + 1 + 3 * hold == 15
    expect(page.locator("#video-length")).to_have_text(f"{expected} frames, 1.3 s")
    page.locator("#video-panel").screenshot(path=str(shots / "video-1-panel.png"))
    page.locator("#video-render").click()
    status = page.locator("#video-status")
    expect(status).to_have_attribute("data-state", "done", timeout=60_000)
    expect(status).to_contain_text(f"{expected} frames")
    expect(page.locator("#video-progress")).to_have_attribute("max", str(expected))
    expect(page.locator("#video-player")).to_be_visible()
    expect(page.locator("#video-saved a")).to_have_count(1)
    page.locator("#video-panel").screenshot(path=str(shots / "video-2-done.png"))

    files = list((runs_root / RUN / "videos").glob("*.mp4"))
    assert len(files) == 1 and not [p for p in files[0].parent.iterdir() if p.name.startswith(".")]
    size, frames = read_frames(files[0])
    assert len(frames) == expected
    assert size == (512, 512)  # 32 px frames enlarged for players
    job = page.evaluate(f"fetch('/api/runs/{RUN}/videos/job').then(r => r.json())")
    assert job["items"] == order and job["done"] == job["total"] == expected
    # Held keyframes: frames 0-2 rest on seed 0, the middle hold on seed 2, the end on seed 1.
    middle = (steps + hold) + hold // 2  # the second keyframe's held frames
    keys_at = {1: order[0], middle: order[1], expected - 1: order[2]}
    assert favourites_shown({f: frames[f] for f in keys_at}, runs_root / RUN, order) == keys_at
    assert problems == []


def test_conditional_run_keeps_each_favourites_class(tiny_run, tmp_path):
    import json
    import shutil

    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    root = tmp_path / "runs"
    shutil.copytree(tiny_run("cgan", name="cgan", data="shapes:64", preview_count=4), root / "cgan",
                    ignore=shutil.ignore_patterns("tb"))
    with TestClient(create_app(root)) as c:
        ids = [c.post("/api/runs/cgan/curated", json={"seed": 4, "label": k}).json()["id"] for k in (0, 2)]
        r = c.post("/api/runs/cgan/videos", json={"items": ids, "steps": 2, "format": "gif", "name": "cls"})
        assert r.status_code == 202
        deadline = time.monotonic() + 60
        while (job := c.get("/api/runs/cgan/videos/job").json())["state"] not in ("done", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert job["state"] == "done", job
        with Image.open(root / "cgan" / "videos" / "cls.gif") as gif:
            gif.seek(0)
            first = np.asarray(gif.convert("RGB")).astype(int)
            gif.seek(gif.n_frames - 1)
            last = np.asarray(gif.convert("RGB")).astype(int)
        assert np.abs(first - last).mean() > 0  # the same seed in two classes: two pictures
        curated = root / "cgan" / "curated.json"
        data = json.loads(curated.read_text())
        data["items"][1]["label"] = 99
        curated.write_text(json.dumps(data))
        r = c.post("/api/runs/cgan/videos", json={"items": ids})
        assert r.status_code == 400 and "has class 99" in r.json()["detail"]


def test_a_projected_image_starred_from_the_cli_is_a_keyframe(client, runs_root, tmp_path, capsys):
    from latentstudio.cli import main

    target = tmp_path / "photo.png"
    Image.new("RGB", (40, 40), (30, 160, 90)).save(target)
    assert main(["project", str(runs_root / RUN), str(target), "--steps", "3", "--restarts", "1",
                 "--out", str(tmp_path / "photo.pt"), "--star"]) == 0
    assert "starred in" in capsys.readouterr().out
    items = client.get(f"/api/runs/{RUN}/curated").json()["items"]
    projected = [i for i in items if i["source"] == "projected"]
    assert len(projected) == 1 and projected[0]["target"] == "photo.png" and projected[0]["has_latent"]
    seed = star(client, 4)
    r = client.post(f"/api/runs/{RUN}/videos", json={"items": [projected[0]["id"], seed],
                                                      "steps": 2, "format": "gif", "name": "mix"})
    assert r.status_code == 202, r.text
    assert wait_for(client)["state"] == "done"
    assert (runs_root / RUN / "videos" / "mix.gif").is_file()
