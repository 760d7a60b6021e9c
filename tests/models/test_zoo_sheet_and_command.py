"""`latentstudio models` lists the zoo; benchmarks/zoo_sheet.py --quick writes a contact sheet."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

from PIL import Image

from latentstudio.cli import main

ROOT = Path(__file__).resolve().parents[2]
ZOO = ["dcgan", "gan-dense", "cgan", "wgan", "wgan-gp", "vae-conv", "vae-dense"]


def test_models_command_lists_every_family_with_its_defaults(capsys) -> None:
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name in ZOO:
        assert any(line.startswith(name + " ") for line in out.splitlines()), name
    assert "--optimizer rmsprop" in out and "--clip 0.01" in out and "--gp-weight 10" in out
    assert "batch norm in D: off" in out
    # Booleans as the flags train takes, tuples comma-separated.
    assert "--hold-grown" in out and "True" not in out and "--betas 0.5,0.999" in out


def test_models_command_json_matches_what_train_resolves(capsys) -> None:
    assert main(["models", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert set(ZOO) <= set(rows)
    assert rows["cgan"]["conditional"] and not rows["dcgan"]["conditional"]
    assert rows["wgan"]["defaults"] == {"epochs": 20, "width": 64, "lr": 5e-5, "optimizer": "rmsprop",
                                        "loss": "wasserstein", "n_critic": 5, "clip": 0.01,
                                        "diffaug_policy": "color,translation,cutout"}
    assert rows["fastgan"]["defaults"]["diffaug_policy"] == "color,translation"
    assert rows["wgan-gp"]["defaults"]["betas"] == [0.0, 0.9]
    assert rows["vae-conv"]["defaults"]["recon"] == "bce"


def test_zoo_sheet_quick_writes_a_labelled_sheet(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("zoo_sheet", ROOT / "benchmarks" / "zoo_sheet.py")
    zoo_sheet = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(zoo_sheet)
    families = ["dcgan", "cgan", "vae-conv", "fastgan"]  # fastgan: at 64 px, its smallest
    assert zoo_sheet.main(["--quick", "--families", ",".join(families), "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "zoo_sheet.json").read_text())
    assert [r["family"] for r in report["families"]] == families
    assert report["command"].startswith("python benchmarks/zoo_sheet.py --quick")
    assert all(r["steps"] == 3 for r in report["families"])
    assert [r["resolution"] for r in report["families"]] == [32, 32, 32, 64]
    with Image.open(tmp_path / "zoo_sheet.png") as sheet:
        assert sheet.width >= 3 * 320
    assert "| cgan | 3 |" in (tmp_path / "zoo_sheet.md").read_text()
