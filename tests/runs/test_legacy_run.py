"""Run folders written by latentstudio 0.1.0 (tests/fixtures/run_0_1_0: a DCGAN with an EMA
generator and a conv VAE, 2 epochs each, with what `sample --seed 3 --n 4` drew then) still load,
sample the same pictures, resume, and show in `runs` and the gallery."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.cli import main
from latentstudio.runs import load_checkpoint, load_run

FIXTURE = Path(__file__).parent.parent / "fixtures" / "run_0_1_0"


@pytest.fixture
def old_runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    shutil.copytree(FIXTURE, root)
    return root


def pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB")).astype(int)


@pytest.mark.parametrize("name", ["gan_ema", "vae"])
def test_samples_match_what_0_1_0_drew(old_runs: Path, name: str, tmp_path: Path) -> None:
    assert json.loads((old_runs / name / "config.json").read_text())["latentstudio_version"] == "0.1.0"
    out = tmp_path / f"{name}.png"
    assert main(["sample", str(old_runs / name), "--n", "4", "--seed", "3", "--size", "native",
                 "--out", str(out)]) == 0
    assert np.abs(pixels(out) - pixels(old_runs / f"{name}_sample_seed3.png")).max() <= 1


def test_the_ema_generator_of_0_1_0_becomes_a_network_entry(old_runs: Path) -> None:
    raw = torch.load(old_runs / "gan_ema" / "checkpoints" / "last.pt", weights_only=True)
    assert raw["format"] == 1 and "ema" in raw["step_state"]
    payload = load_checkpoint(old_runs / "gan_ema" / "checkpoints" / "last.pt")
    assert "ema" not in payload["step_state"]
    for k, v in raw["step_state"]["ema"].items():
        torch.testing.assert_close(payload["models"]["generator_ema"][k], v)
    run = load_run(old_runs / "gan_ema")
    assert run.image_network is run.models["generator_ema"]


@pytest.mark.parametrize("name", ["gan_ema", "vae"])
def test_resumes_and_writes_the_current_format(old_runs: Path, name: str) -> None:
    run = old_runs / name
    assert main(["train", "--resume", str(run), "--epochs", "3"]) == 0
    payload = torch.load(run / "checkpoints" / "last.pt", weights_only=True)
    assert payload["format"] == 2 and payload["progress"]["epoch"] == 3
    assert (run / "samples" / "epoch_0003.png").is_file()
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["epochs"] == 3 and "extra" not in meta["config"]
    load_run(run).sample(2)


def test_listed_by_runs_and_the_gallery(old_runs: Path, capsys: pytest.CaptureFixture) -> None:
    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    assert main(["runs", str(old_runs)]) == 0
    table = capsys.readouterr().out
    assert "gan_ema" in table and "vae" in table
    client = TestClient(create_app(old_runs))
    listed = {r["name"]: r for r in client.get("/api/runs").json()["runs"]}
    assert listed["gan_ema"]["status"] == "finished" and listed["vae"]["kind"] == "vae"
    detail = client.get("/api/runs/vae").json()
    assert detail["grids"]
    assert detail["layout"]["kinds"][:6] == ["real", "real", "recon", "recon", "sample", "sample"]
    for name in ("gan_ema", "vae"):  # a preview cell, cut out with the layout the trainer used
        r = client.post(f"/api/runs/{name}/curated", json={"source": "grid", "epoch": 2, "index": 1})
        assert r.status_code == 201, r.text
