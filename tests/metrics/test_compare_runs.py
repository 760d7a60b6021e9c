"""`latentstudio runs`: a table of hand-written run folders, including broken ones."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest

from latentstudio.errors import UserError
from latentstudio.metrics.compare import build_table, collect_runs, to_csv, to_markdown, to_terminal


def write_run(root: Path, name: str, records: list[dict] | None = None, evals: dict | None = None,
              **settings: object) -> Path:
    run = root / name
    (run / "checkpoints").mkdir(parents=True)
    config = dict(model="dcgan", data="shapes", resolution=32, epochs=10, batch_size=64, lr=2e-4,
                  latent_dim=100, seed=0, out=str(run), device="auto", log_every=10)
    config.update(settings)
    (run / "config.json").write_text(json.dumps({"model": config["model"], "config": config,
                                                 "data": {"spec": config["data"]}}))
    lines = [json.dumps(r) for r in records or []]
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if evals is not None:
        (run / "eval.json").write_text(json.dumps({"metrics": evals}))
    return run


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    write_run(tmp_path, "a-small-lr", [
        {"step": 10, "epoch": 0, "loss_d": 1.3, "loss_g": 0.9, "time": 12.0, "images_per_s": 50},
        {"step": 20, "epoch": 1, "loss_d": 1.1, "loss_g": 1.2, "time": 30.5},
        {"step": 20, "epoch": 2, "eval/fid_lite0": 80.0},
    ], lr=1e-4)
    write_run(tmp_path, "b-big-lr", [
        {"step": 10, "epoch": 0, "loss_d": 0.7, "loss_g": 2.0, "time": 3725.0},
    ], evals={"fid_lite0": 42.5, "precision_lite0": 0.61}, lr=1e-3, ema=0.999)
    write_run(tmp_path, "c-crashed", [{"step": 5, "loss_d": 1.0, "time": 9.0}])
    with open(tmp_path / "c-crashed" / "metrics.jsonl", "a") as f:
        f.write('{"step": 6, "loss_d": 0.')  # half-written last line
    bad = tmp_path / "d-corrupt"
    bad.mkdir()
    (bad / "config.json").write_text("{not json")
    nocfg = tmp_path / "e-no-config"
    (nocfg / "checkpoints").mkdir(parents=True)
    (tmp_path / "not-a-run").mkdir()
    (tmp_path / "notes.txt").write_text("hello")
    return tmp_path


def test_rows_columns_and_corrupt_folders(runs: Path) -> None:
    rows = collect_runs(runs)
    assert [r.name for r in rows] == ["a-small-lr", "b-big-lr", "c-crashed", "d-corrupt",
                                      "e-no-config"]
    a, b, c, d, e = rows
    assert a.steps == 20 and a.wall_seconds == 30.5
    assert a.metrics == {"loss_d": 1.1, "loss_g": 1.2, "fid_lite0": 80.0}
    assert b.metrics["fid_lite0"] == 42.5 and b.labels["fid_lite0"] == "FID (lite0)"
    assert c.steps == 5 and c.error is None
    assert d.error == "config.json is not valid JSON" and e.error == "no config.json"
    table = build_table(rows)
    assert table.differing == {"lr", "ema"}  # `out` differs too, but is not a hyper-parameter
    assert table.headers[:10] == ["name", "status", "model", "data", "res", "latent_dim",
                                  "batch_size", "lr", "epochs", "ema"]
    assert table.headers.index("FID (lite0)") < table.headers.index("loss_d")
    assert table.headers[-1] == "note"


def test_terminal_markdown_and_csv(runs: Path) -> None:
    table = build_table(collect_runs(runs))
    text = to_terminal(table)
    assert "0.0001*" in text and "0.001*" in text and "1h02m" in text and "30s" in text
    assert "corrupt: no config.json" in text and "differs between these runs" in text
    assert "\033[" in to_terminal(table, color=True) and "0.0001*" not in to_terminal(table, True)
    md = to_markdown(table)
    assert "| **0.0001** |" in md and "| 64 |" in md and "FID (lite0)" in md
    assert "| **-** |" in md  # run a has no ema: shown as unset, highlighted
    assert len({line.count("|") for line in md.splitlines()}) == 1  # every row has every column
    parsed = list(csv.DictReader(io.StringIO(to_csv(table))))
    assert parsed[1]["FID (lite0)"] == "42.5" and parsed[1]["wall"] == "3725"
    assert parsed[3]["note"].startswith("corrupt")


def test_sorting(runs: Path) -> None:
    rows = collect_runs(runs)
    names = [r["name"] for r in build_table(rows, sort="fid_lite0").rows]
    assert names[:2] == ["b-big-lr", "a-small-lr"] and names[-2:] == ["d-corrupt", "e-no-config"]
    names = [r["name"] for r in build_table(rows, sort="step", reverse=True).rows]
    assert names[:3] == ["a-small-lr", "b-big-lr", "c-crashed"]
    with pytest.raises(UserError, match="cannot sort by 'kid'"):
        build_table(rows, sort="kid")  # no run has a KID value
    assert build_table(rows, sort="fid").sorted_by == "fid_lite0"


def test_missing_folder_and_single_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="no runs folder"):
        collect_runs(tmp_path / "nope")
    run = write_run(tmp_path, "solo")
    assert [r.name for r in collect_runs(run)] == ["solo"]
    assert collect_runs(tmp_path / "solo" / "checkpoints") == []
