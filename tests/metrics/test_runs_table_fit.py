"""`latentstudio runs` in a terminal: a status column, and a table that fits the width."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from latentstudio.cli import main
from latentstudio.metrics.compare import build_table, collect_runs, to_terminal


def write_run(root: Path, name: str, records: list[dict], checkpoint: bool = True,
              age: float = 3600, **settings: object) -> Path:
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    config = dict(model="dcgan", data="folder:/home/someone/pictures/holidays/2024/cats",
                  resolution=32, steps=100, batch_size=64, lr=2e-4, latent_dim=100, seed=0,
                  out=str(run), device="auto", log_every=10, ema=0.999, width=32)
    config.update(settings)
    (run / "config.json").write_text(json.dumps({"model": config["model"], "config": config,
                                                 "data": {"spec": config["data"]}}))
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    if checkpoint:
        (run / "checkpoints" / "last.pt").write_bytes(b"x")
    old = time.time() - age
    for p in [run, run / "metrics.jsonl", run / "checkpoints" / "last.pt"]:
        if p.exists():
            os.utime(p, (old, old))
    return run


def losses(step: int, value: float = 1.0) -> dict:
    return {"step": step, "loss_d": value, "loss_g": value, "d_real": 0.5, "d_fake": 0.4,
            "time": 3.0 * step, "images_per_s": 100}


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    write_run(tmp_path, "done", [losses(50), losses(100)], lr=1e-4)
    write_run(tmp_path, "stopped-early", [losses(50)], lr=2e-4)
    write_run(tmp_path, "blew-up", [losses(50), losses(60, float("nan")),
                                    {"step": 60, "event": "restored the last checkpoint"}],
              lr=1e-2)
    write_run(tmp_path, "running", [losses(10)], age=0, lr=3e-4)
    write_run(tmp_path, "blew-up-null", [losses(50), {**losses(60), "loss_d": None}], lr=2e-2)
    (tmp_path / "done" / "eval.json").write_text(json.dumps(
        {"metrics": {"fid_lite0": 40.0, "kid_lite0": 0.03, "precision_lite0": 0.6,
                     "recall_lite0": 0.4, "density_lite0": 0.9, "coverage_lite0": 0.7}}))
    return tmp_path


def test_status_column(runs: Path) -> None:
    table = build_table(collect_runs(runs))
    assert table.headers[:2] == ["name", "status"]
    assert {r["name"]: r["status"] for r in table.rows} == {
        "done": "finished", "stopped-early": "interrupted", "blew-up": "diverged",
        "blew-up-null": "diverged", "running": "training"}


@pytest.mark.parametrize("width", [80, 100, 60])
def test_terminal_table_fits_the_width(runs: Path, width: int) -> None:
    full = to_terminal(build_table(collect_runs(runs)))
    assert max(len(line) for line in full.splitlines()) > 160  # the case worth fitting
    text = to_terminal(build_table(collect_runs(runs)), width=width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines[:-2]), text
    assert lines[0].split()[:2] == ["name", "status"] and "step" in lines[0]
    assert "columns hidden to fit" in lines[-1] and "--csv" in lines[-1]


def test_runs_command_fits_columns_env(runs: Path, capsys: pytest.CaptureFixture[str],
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "90")
    assert main(["runs", str(runs)]) == 0
    table = capsys.readouterr().out.splitlines()
    assert all(len(line) <= 90 for line in table[:6])
    assert "FID (lite0)" in table[0]  # the evaluation outlives losses and settings
