"""--preview-every and --checkpoint-every in steps, seconds or epochs; grid names; old configs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from cli_checks import one_line_error

from latentstudio.errors import UserError
from latentstudio.runs import sample_grids
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train.config import Every, TrainConfig, parse_every
from latentstudio.train.loop import Trainer, train

TINY = dict(data="shapes:96", resolution=32, batch_size=16, width=8, latent_dim=16, log_every=2,
            preview_count=4, seed=3, device="cpu")


@pytest.mark.parametrize("value, expected", [
    ("500steps", Every(500, "steps")), ("1step", Every(1, "steps")), ("90s", Every(90, "seconds")),
    ("5m", Every(300, "seconds")), ("1.5h", Every(5400, "seconds")), ("2epochs", Every(2, "epochs")),
    (3, Every(3, "epochs")), ("3", Every(3, "epochs")), (" 10 Steps ", Every(10, "steps")),
])
def test_cadences_parse(value, expected) -> None:
    assert parse_every(value) == expected


@pytest.mark.parametrize("value", ["x", "0", "0s", "-1", "1.5steps", "5 parsecs", "steps", True, 1.5])
def test_bad_cadences_are_one_line_errors(value) -> None:
    with pytest.raises(UserError, match="--preview-every|preview_every") as e:
        TrainConfig(preview_every=value)
    assert "\n" not in str(e.value)


def test_bad_cadence_flag_exits_with_one_line(capsys) -> None:
    err = one_line_error(["train", "--checkpoint-every", "5parsecs", "--dry-run"], capsys)
    assert "--checkpoint-every" in err and "500steps" in err


def test_a_bare_number_still_counts_epochs_and_round_trips(tmp_path: Path) -> None:
    cfg = TrainConfig(preview_every="2", checkpoint_every="3steps")
    assert cfg.preview_every == 2 and cfg.checkpoint_every == "3steps"
    again = TrainConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert parse_every(again.preview_every) == Every(2, "epochs")
    assert parse_every(again.checkpoint_every) == Every(3, "steps")


def _saved_steps(monkeypatch) -> list[int]:
    saved: list[int] = []
    original = Trainer.save_checkpoint

    def spy(self, name="last"):
        saved.append(self.step)
        return original(self, name)

    monkeypatch.setattr(Trainer, "save_checkpoint", spy)
    return saved


def test_step_cadence_names_grids_by_step(tmp_path: Path, monkeypatch, one_thread) -> None:
    saved = _saved_steps(monkeypatch)
    run = train(TrainConfig(steps=8, preview_every="3steps", checkpoint_every="4steps",
                            out=str(tmp_path / "r"), **TINY), progress=False)
    names = [n for n, _ in sample_grids(run)]
    assert names == ["step_000000", "step_000003", "step_000006", "step_000008"]
    assert saved == [0, 4, 8]  # the start, the cadence, the end
    assert (run / "progress.gif").is_file()


def test_seconds_cadence(tmp_path: Path, monkeypatch, one_thread) -> None:
    saved = _saved_steps(monkeypatch)
    run = train(TrainConfig(steps=4, preview_every="1h", checkpoint_every="1h",
                            out=str(tmp_path / "hour"), **TINY), progress=False)
    assert [n for n, _ in sample_grids(run)] == ["step_000000", "step_000004"]
    assert saved == [0, 4]
    saved.clear()
    run = train(TrainConfig(steps=4, preview_every="0.000001s", checkpoint_every="0.000001s",
                            out=str(tmp_path / "often"), **TINY), progress=False)
    assert len(sample_grids(run)) == 5  # every step
    assert saved == [0, 2, 4]  # checked at each log (log_every 2)


def test_epoch_cadence_keeps_epoch_names(tmp_path: Path, one_thread) -> None:
    run = train(TrainConfig(epochs=2, preview_every=1, checkpoint_every="1epochs",
                            out=str(tmp_path / "r"), **TINY), progress=False)
    assert [n for n, _ in sample_grids(run)] == ["epoch_0000", "epoch_0001", "epoch_0002"]


def test_grids_of_both_names_sort_by_step(tmp_path: Path, tiny_run) -> None:
    run = tmp_path / "r"
    shutil.copytree(tiny_run("dcgan", name="epochs", steps=8, preview_every=1), run)
    # 64 images in batches of 16: 4 steps an epoch; epoch_0001 is step 4, epoch_0002 step 8.
    assert [n for n, _ in sample_grids(run)] == ["epoch_0000", "epoch_0001", "epoch_0002"]
    for step in (2, 5, 9):
        shutil.copy(run / "samples" / "epoch_0000.png", run / "samples" / f"step_{step:06d}.png")
    assert [n for n, _ in sample_grids(run)] == ["epoch_0000", "step_000002", "epoch_0001",
                                                 "step_000005", "epoch_0002", "step_000009"]


def _weights(run: Path) -> dict[str, torch.Tensor]:
    payload = load_checkpoint(run / "checkpoints" / "last.pt")
    return {f"{m}.{k}": v for m, sd in payload["models"].items() for k, v in sd.items()}


def test_resume_equals_uninterrupted_with_frequent_previews(tmp_path: Path, one_thread) -> None:
    # Previews every step and checkpoints by steps must not move the training's random state.
    extra = dict(TINY, preview_every="0.000001s", checkpoint_every="3steps", ema=0.9,
                 augment="diffaug")
    whole = train(TrainConfig(steps=14, out=str(tmp_path / "whole"), **extra), progress=False)
    half = train(TrainConfig(steps=7, out=str(tmp_path / "half"), **extra), progress=False)
    train(resume=half, overrides={"steps": 14}, progress=False)
    a, b = _weights(whole), _weights(half)
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_the_gallery_lists_and_labels_grids_of_both_names(tmp_path: Path, tiny_run) -> None:
    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    root = tmp_path / "runs"
    shutil.copytree(tiny_run("vae-conv", name="by-epoch", steps=8, preview_every=1,
                             preview_count=16), root / "old", ignore=shutil.ignore_patterns("tb"))
    shutil.copytree(tiny_run("vae-conv", name="by-step", steps=8, preview_every="4steps",
                             preview_count=16), root / "new", ignore=shutil.ignore_patterns("tb"))
    client = TestClient(create_app(root))
    old = client.get("/api/runs/old").json()["grids"]
    assert [(g["name"], g["epoch"], g["step"]) for g in old] == [
        ("epoch_0000", 0, None), ("epoch_0001", 1, None), ("epoch_0002", 2, None)]
    new = client.get("/api/runs/new").json()["grids"]
    assert [(g["name"], g["epoch"], g["step"]) for g in new] == [
        ("step_000000", None, 0), ("step_000004", None, 4), ("step_000008", None, 8)]
    for url in ("/api/runs/old/grids/1/labelled.png", "/api/runs/old/grids/epoch_0001/labelled.png",
                "/api/runs/new/grids/step_000004/labelled.png"):
        res = client.get(url)
        assert res.status_code == 200 and res.headers["content-type"] == "image/png", url
    for url in ("/api/runs/new/grids/4/labelled.png", "/api/runs/new/grids/step_4/labelled.png",
                "/api/runs/old/grids/..%2Fconfig/labelled.png", "/api/runs/old/grids/%C2%B9/labelled.png"):
        assert client.get(url).status_code == 404, url
    assert client.get("/api/runs").json()["runs"][0]["thumbnail"]
