"""The gallery's JSON API through FastAPI's test client: runs, live refresh, damaged folders,
starring and unstarring, request limits."""

from __future__ import annotations

import base64
import io
import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from cli_checks import png_array
from PIL import Image

from latentstudio.web.app import create_app

RUN = "tiny"



def data_url_array(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return png_array(base64.b64decode(url.split(",", 1)[1]))


def tree(root: Path) -> dict[str, int]:
    """Every file under root with its modification time."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


class TestRuns:
    def test_runs_page_lists_the_run_with_its_settings_and_thumbnail(self, client):
        data = client.get("/api/runs").json()
        (run,) = data["runs"]
        assert run["name"] == RUN and run["status"] == "finished" and run["problems"] == []
        assert (run["model"], run["data"], run["resolution"]) == ("dcgan", "shapes:128", 32)
        assert run["step"] == run["total_steps"] == 12
        assert {"loss_d", "loss_g"} <= set(run["metrics"])
        thumb = client.get(run["thumbnail"])
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/png"
        assert png_array(thumb.content).shape == (4 * 34 + 2, 4 * 34 + 2, 3)

    def test_run_page_has_grids_gif_curves_config(self, client):
        d = client.get(f"/api/runs/{RUN}").json()
        assert [g["epoch"] for g in d["grids"]] == [0, 1, 2, 3]
        assert client.get(d["gif"]).headers["content-type"] == "image/gif"
        steps = [s for s, _ in d["curves"]["loss_g"]]
        assert steps == [2, 4, 6, 8, 10, 12]
        assert d["config"]["width"] == 8 and d["model_config"]["latent_dim"] == 32
        assert d["layout"] == {"per_row": 4, "cell": 32, "cell_height": 32, "padding": 2, "count": 16,
                               "kinds": ["sample"] * 16, "rows": ["sample"] * 4}

    def test_index_and_static_files_are_served(self, client):
        page = client.get("/")
        assert page.status_code == 200 and "/static/app.js" in page.text
        for name in ("app.js", "style.css"):
            assert client.get(f"/static/{name}").status_code == 200

    def test_summary_follows_a_training_run(self, client, runs_root):
        """New metrics and a new grid show up at the next poll (no stale cache), as training."""
        run = runs_root / RUN
        with open(run / "metrics.jsonl", "a") as f:
            f.write(json.dumps({"step": 14, "epoch": 3, "loss_d": 0.5, "loss_g": 2.0}) + "\n")
        meta = json.loads((run / "config.json").read_text())
        meta["config"]["steps"] = 40
        (run / "config.json").write_text(json.dumps(meta))
        (run / "samples" / "epoch_0004.png").write_bytes((run / "samples" / "epoch_0003.png").read_bytes())
        (r,) = client.get("/api/runs").json()["runs"]
        assert r["status"] == "training" and r["step"] == 14 and r["metrics"]["loss_g"] == 2.0
        assert "/epoch_0004.png" in r["thumbnail"]
        assert len(client.get(f"/api/runs/{RUN}").json()["grids"]) == 5
        old = time.time() - 3600
        for p in [run, run / "metrics.jsonl", run / "checkpoints" / "last.pt", *run.glob("samples/*")]:
            os.utime(p, (old, old))
        assert client.get("/api/runs").json()["runs"][0]["status"] == "interrupted"


class TestDamagedRuns:
    @pytest.fixture
    def damaged(self, runs_root: Path) -> Path:
        src = runs_root / RUN
        half = runs_root / "half-written"
        half.mkdir()
        (half / "config.json").write_text((src / "config.json").read_text()[:50])
        nockpt = runs_root / "just-started"
        nockpt.mkdir()
        (nockpt / "config.json").write_text((src / "config.json").read_text())
        (nockpt / "metrics.jsonl").write_text('{"step": 2, "loss_d": 1.0}\n{"step": 4, "lo')
        badckpt = runs_root / "bad-checkpoint"
        (badckpt / "checkpoints").mkdir(parents=True)
        (badckpt / "samples").mkdir()
        (badckpt / "config.json").write_text((src / "config.json").read_text())
        (badckpt / "checkpoints" / "last.pt").write_bytes(b"PK\x03\x04 not a checkpoint")
        (badckpt / "samples" / "epoch_0000.png").write_bytes(b"")
        odd = runs_root / "odd-config"
        odd.mkdir()
        (odd / "config.json").write_text(json.dumps(
            {"kind": "gan", "data": "oops", "config": {"model": "dcgan", "resolution": "big", "preview_count": "x"}}))
        (runs_root / "empty").mkdir()
        (runs_root / "notes.txt").write_text("not a run")
        return runs_root

    def test_listing_shows_each_state_and_still_lists_good_runs(self, client, damaged):
        runs = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
        assert set(runs) == {RUN, "half-written", "just-started", "bad-checkpoint", "empty", "odd-config"}
        assert runs[RUN]["status"] == "finished"
        assert runs["half-written"]["status"] == "damaged"
        assert "config.json" in runs["half-written"]["problems"][0]
        assert runs["empty"]["status"] == "damaged"
        assert runs["just-started"]["step"] == 2
        assert any("unreadable line" in p for p in runs["just-started"]["problems"])

    @pytest.mark.parametrize("name", ["half-written", "just-started", "bad-checkpoint", "empty", "odd-config"])
    def test_damaged_run_pages_answer_with_reasons_not_errors(self, client, damaged, name):
        assert client.get(f"/api/runs/{name}").status_code == 200
        for method, path, body in [("GET", "latent", None), ("POST", "render", {"seed": 1}),
                                   ("GET", "samples", None), ("POST", "curated", {"seed": 1})]:
            r = client.request(method, f"/api/runs/{name}/{path}", json=body)
            assert r.status_code == 409, (path, r.text)
            assert r.json()["detail"]
        assert not (damaged / name / "curated").exists() and not (damaged / name / "curated.json").exists()

    def test_unreadable_grid_cannot_be_starred_but_does_not_crash(self, client, damaged):
        r = client.post("/api/runs/bad-checkpoint/curated", json={"source": "grid", "epoch": 0, "index": 0})
        assert r.status_code == 409 and "grid" in r.json()["detail"]
        assert any("preview settings" in p for p in client.get("/api/runs/odd-config").json()["problems"])

    def test_damaged_curated_json_is_reported_and_rewritten_by_the_next_star(self, client, runs_root):
        (runs_root / RUN / "curated.json").write_text('{"items": [')
        d = client.get(f"/api/runs/{RUN}").json()
        assert d["curated"] == [] and any("curated.json" in p for p in d["problems"])
        assert client.post(f"/api/runs/{RUN}/curated", json={"seed": 4}).status_code == 201
        assert len(json.loads((runs_root / RUN / "curated.json").read_text())["items"]) == 1


class TestCuration:
    def test_star_writes_png_and_latent_only_into_curated(self, client, runs_root):
        run = runs_root / RUN
        before = tree(runs_root)
        rendered = client.post(f"/api/runs/{RUN}/render", json={"seed": 7, "directions": [1.5]}).json()
        assert rendered["starred"] is False
        item = client.post(f"/api/runs/{RUN}/curated", json={"seed": 7, "directions": [1.5]})
        assert item.status_code == 201
        item = item.json()
        assert item["key"] == rendered["key"] and item["seed"] == 7 and item["has_latent"]
        changed = {k for k, v in tree(runs_root).items() if before.get(k) != v}
        assert changed == {f"{RUN}/curated.json", f"{RUN}/{item['file']}", f"{RUN}/{item['latent_file']}",
                           f"{RUN}/curated/.lock"}  # the lock that servers sharing the folder take
        # The saved PNG is the rendered picture; the latent file reloads safely.
        assert np.array_equal(png_array((run / item["file"]).read_bytes()),
                              data_url_array(rendered["image"]))
        from latentstudio.explore.latents import load_latent

        saved = load_latent(run / item["latent_file"], latent_dim=32)  # usable as a keyframe
        listed = json.loads((run / "curated.json").read_text())["items"][0]
        assert saved.label is None and torch.allclose(saved.z, torch.tensor(listed["latent"]), atol=1e-5)
        # Starred state is visible to render, samples and the pages.
        again = client.post(f"/api/runs/{RUN}/render", json={"seed": 7, "directions": [1.5]}).json()
        assert again["starred"] and again["id"] == item["id"]
        assert client.post(f"/api/runs/{RUN}/curated", json={"seed": 7, "directions": [1.5]}).json()["id"] == item["id"]
        assert len(json.loads((run / "curated.json").read_text())["items"]) == 1
        everything = client.get("/api/curated").json()["runs"]
        assert [r["name"] for r in everything] == [RUN] and everything[0]["items"][0]["id"] == item["id"]
        assert client.get(everything[0]["items"][0]["url"]).status_code == 200

    def test_samples_are_starrable_and_match_their_seed(self, client):
        samples = client.get(f"/api/runs/{RUN}/samples?seed=10&n=3").json()["samples"]
        assert [s["seed"] for s in samples] == [10, 11, 12] and not any(s["starred"] for s in samples)
        one = client.post(f"/api/runs/{RUN}/render", json={"seed": 11}).json()
        assert samples[1]["key"] == one["key"]
        assert np.abs(data_url_array(samples[1]["image"]).astype(int) - data_url_array(one["image"])).max() <= 1
        client.post(f"/api/runs/{RUN}/curated", json={"seed": 11})
        samples = client.get(f"/api/runs/{RUN}/samples?seed=10&n=3").json()["samples"]
        assert [s["starred"] for s in samples] == [False, True, False]

    def test_unstar_removes_files_and_entry(self, client, runs_root):
        item = client.post(f"/api/runs/{RUN}/curated", json={"seed": 3}).json()
        assert client.delete(f"/api/runs/{RUN}/curated/{item['id']}").status_code == 204
        assert not (runs_root / RUN / item["file"]).exists()
        assert not (runs_root / RUN / item["latent_file"]).exists()
        assert json.loads((runs_root / RUN / "curated.json").read_text())["items"] == []
        assert client.delete(f"/api/runs/{RUN}/curated/{item['id']}").status_code == 404
        assert client.get("/api/curated").json()["runs"] == []

    def test_grid_cell_star_crops_the_cell(self, client, runs_root):
        item = client.post(f"/api/runs/{RUN}/curated", json={"source": "grid", "epoch": 2, "index": 6}).json()
        assert (item["source"], item["epoch"], item["index"], item["kind"]) == ("grid", 2, 6, "sample")
        grid = png_array((runs_root / RUN / "samples" / "epoch_0002.png").read_bytes())
        cell = png_array((runs_root / RUN / item["file"]).read_bytes())
        y, x = 2 + 1 * 34, 2 + 2 * 34  # row 1, column 2 of a 4-wide grid of 32 px cells
        assert np.array_equal(cell, grid[y:y + 32, x:x + 32])
        for bad in ({"epoch": 2, "index": 16}, {"epoch": 99, "index": 0}, {"epoch": 2}):
            assert client.post(f"/api/runs/{RUN}/curated", json={"source": "grid", **bad}).status_code in (404, 409, 422)

    def test_concurrent_stars_are_all_kept(self, client, runs_root):
        client.get(f"/api/runs/{RUN}/latent")  # load the model once
        codes = []

        def star(seed: int) -> None:
            codes.append(client.post(f"/api/runs/{RUN}/curated", json={"seed": seed}).status_code)

        threads = [threading.Thread(target=star, args=(s,)) for s in range(10)]
        [t.start() for t in threads]
        [t.join() for t in threads]
        assert codes == [201] * 10
        items = json.loads((runs_root / RUN / "curated.json").read_text())["items"]
        assert sorted(i["seed"] for i in items) == list(range(10))
        assert len(list((runs_root / RUN / "curated").glob("*.png"))) == 10

    def test_star_on_a_missing_run_creates_nothing(self, client, runs_root):
        assert client.post("/api/runs/nope/curated", json={"seed": 1}).status_code == 404
        assert not (runs_root / "nope").exists()

    def test_curated_link_pointing_outside_is_refused(self, client, runs_root, tmp_path):
        outside = tmp_path / "elsewhere"
        outside.mkdir()
        (runs_root / RUN / "curated").symlink_to(outside)
        r = client.post(f"/api/runs/{RUN}/curated", json={"seed": 1})
        assert r.status_code == 409 and list(outside.iterdir()) == []

    def test_lock_file_link_pointing_outside_is_refused(self, client, runs_root, tmp_path):
        (runs_root / RUN / "curated").mkdir()
        (runs_root / RUN / "curated" / ".lock").symlink_to(tmp_path / "elsewhere")
        r = client.post(f"/api/runs/{RUN}/curated", json={"seed": 1})
        assert r.status_code == 409 and ".lock" in r.json()["detail"]
        assert not (tmp_path / "elsewhere").exists()

    def test_unstar_of_an_unknown_favourite_writes_nothing(self, client, runs_root):
        assert client.delete(f"/api/runs/{RUN}/curated/0123456789ab").status_code == 404
        assert not (runs_root / RUN / "curated").exists()


class TestPlay:
    def test_latent_info_lists_directions(self, client):
        info = client.get(f"/api/runs/{RUN}/latent").json()
        assert info["latent_dim"] == 32 and info["step"] == 12 and len(info["directions"]) == 6
        explained = [d["explained"] for d in info["directions"]]
        assert explained == sorted(explained, reverse=True)
        assert info["vectors"] == [] and info["classes"] == []

    def test_slider_moves_change_the_picture(self, client):
        base = client.post(f"/api/runs/{RUN}/render", json={"seed": 5}).json()
        moved = client.post(f"/api/runs/{RUN}/render", json={"seed": 5, "directions": [3.0]}).json()
        assert base["key"] != moved["key"]
        assert not np.array_equal(data_url_array(base["image"]), data_url_array(moved["image"]))
        same = client.post(f"/api/runs/{RUN}/render", json={"seed": 5, "directions": [0.0]}).json()
        assert same["key"] == base["key"]

    def test_interpolation_gif_between_two_favourites(self, client):
        a = client.post(f"/api/runs/{RUN}/curated", json={"seed": 1}).json()
        b = client.post(f"/api/runs/{RUN}/curated", json={"seed": 2}).json()
        r = client.post(f"/api/runs/{RUN}/interpolate", json={"a": a["id"], "b": b["id"], "frames": 5})
        assert r.status_code == 200 and r.headers["content-type"] == "image/gif"
        assert "attachment" in r.headers["content-disposition"]
        gif = Image.open(io.BytesIO(r.content))
        assert gif.n_frames == 5
        first = client.post(f"/api/runs/{RUN}/render", json={"seed": 1}).json()
        gif.seek(0)
        # GIF frames are palette-quantised, so compare loosely with the rendered start.
        diff = np.abs(np.asarray(gif.convert("RGB")).astype(int) - data_url_array(first["image"]))
        assert diff.mean() < 4
        missing = client.post(f"/api/runs/{RUN}/interpolate", json={"a": a["id"], "b": "0" * 12})
        assert missing.status_code == 404

    @pytest.mark.parametrize("body", [
        {"seed": -1}, {"seed": 1, "directions": [float("nan")]}, {"seed": 1, "directions": [11]},
        {"seed": 1, "directions": [0.0] * 65}, {"seed": "x"},
    ])
    def test_bad_latent_requests_are_refused(self, client, body):
        r = client.post(f"/api/runs/{RUN}/render", content=json.dumps(body),
                        headers={"content-type": "application/json"})
        assert r.status_code == 422

    def test_more_directions_or_unknown_vector_is_a_clear_error(self, client):
        r = client.post(f"/api/runs/{RUN}/render", json={"seed": 1, "directions": [0.0] * 7})
        assert r.status_code == 409 and "6 latent directions" in r.json()["detail"]
        r = client.post(f"/api/runs/{RUN}/render", json={"seed": 1, "vectors": {"smile": 1}})
        assert r.status_code == 409 and "smile" in r.json()["detail"]


class TestLimits:
    def test_large_bodies_are_refused(self, client):
        big = json.dumps({"seed": 1, "vectors": {f"v{i}": 0 for i in range(20000)}})
        assert len(big) > 64 * 1024
        r = client.post(f"/api/runs/{RUN}/render", content=big, headers={"content-type": "application/json"})
        assert r.status_code == 413

        def chunks():  # no Content-Length: the limit must hold while reading
            for _ in range(100):
                yield b" " * 1024

        r = client.post(f"/api/runs/{RUN}/render", content=chunks(), headers={"content-type": "application/json"})
        assert r.status_code == 413

    def test_cross_site_writes_are_refused(self, client, runs_root):
        r = client.post(f"/api/runs/{RUN}/curated", json={"seed": 1}, headers={"origin": "http://evil.example"})
        assert r.status_code == 403 and not (runs_root / RUN / "curated.json").exists()
        r = client.post(f"/api/runs/{RUN}/curated", content='{"seed": 1}', headers={"content-type": "text/plain"})
        assert r.status_code == 422 and not (runs_root / RUN / "curated.json").exists()
        ok = client.post(f"/api/runs/{RUN}/curated", json={"seed": 1}, headers={"origin": "http://testserver"})
        assert ok.status_code == 201

    def test_unknown_hosts_are_refused_when_hosts_are_listed(self, runs_root):
        from fastapi.testclient import TestClient

        with TestClient(create_app(runs_root, allowed_hosts=["127.0.0.1"]), base_url="http://127.0.0.1") as c:
            assert c.get("/api/runs").status_code == 200
            assert c.get("/api/runs", headers={"host": "rebound.example"}).status_code == 400

    def test_missing_runs_folder_is_a_user_error(self, tmp_path):
        from latentstudio.errors import UserError

        with pytest.raises(UserError, match="does not exist"):
            create_app(tmp_path / "absent")
