"""--eval-every: the callback evaluates every K epochs, logs, and keeps the best checkpoint."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch

from latentstudio.data.shapes import make_shapes
from latentstudio.errors import UserError
from latentstudio.metrics.evaluate import EvalConfig
from latentstudio.train.evaluation import EvalCallback


class FakeTrainer:
    """The parts of train.loop.Trainer the callback uses; its 'generator' gets worse or better
    on demand (noise level)."""

    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self.data = make_shapes(64, 16, seed=0)
        self.config = SimpleNamespace(latent_dim=4)
        self.model_config = SimpleNamespace(num_classes=0)
        self.step = self.epoch = 0
        self.noise = 0.0
        self.logged: list[dict[str, Any]] = []
        self.saved: list[str] = []

    def sample(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        images = make_shapes(len(z), 16, seed=1).images.float() / 127.5 - 1
        gen = torch.Generator().manual_seed(0)
        return (images + self.noise * torch.randn(images.shape, generator=gen)).clamp(-1, 1)

    def log_metrics(self, record: dict[str, Any]) -> None:
        self.logged.append({"step": self.step, **record})

    def save_checkpoint(self, name: str = "last") -> Path:
        self.saved.append(name)
        return self.run_dir / "checkpoints" / f"{name}.pt"


def _epochs(cb: EvalCallback, trainer: FakeTrainer, noises: list[float]) -> None:
    for noise in noises:
        trainer.epoch += 1
        trainer.step += 10
        trainer.noise = noise
        cb.on_epoch_end(trainer)


def test_evaluates_every_k_epochs_and_keeps_best(tiny_extractor: object, tmp_path: Path) -> None:
    trainer = FakeTrainer(tmp_path)
    config = EvalConfig(metrics=("kid",), n=32, extractor="tiny", kid_subsets=4,
                        kid_subset_size=16, progress=False)
    cb = EvalCallback(config, every=2, keep_best_by="fid")
    assert "fid" in cb.config.metrics  # added because best.pt is chosen by it
    _epochs(cb, trainer, [0.0, 0.5, 9.0, 0.8, 9.0, 0.1])  # evaluated at epochs 2, 4, 6
    assert [r["step"] for r in trainer.logged] == [20, 40, 60]
    assert {"eval/fid_tiny", "eval/kid_tiny", "eval/kid_std_tiny"} <= set(trainer.logged[0])
    fids = [r["eval/fid_tiny"] for r in trainer.logged]
    assert fids[1] > fids[0] and fids[2] < fids[1]
    assert trainer.saved == ["best", "best"]  # epoch 2 (first), epoch 6 (better than 2 and 4)
    best = json.loads((tmp_path / "checkpoints" / "best.json").read_text())
    assert best == {"metric": "fid_tiny", "value": fids[2], "step": 60, "epoch": 6}

    resumed = EvalCallback(config, every=2, keep_best_by="fid")  # a resumed run remembers
    trainer.logged, trainer.saved = [], []
    _epochs(resumed, trainer, [0.0, 0.3])
    assert trainer.saved == [] and len(trainer.logged) == 1


def test_higher_is_better_metrics_and_bad_choices(tiny_extractor: object, tmp_path: Path) -> None:
    trainer = FakeTrainer(tmp_path)
    config = EvalConfig(metrics=("pr",), n=32, extractor="tiny", progress=False)
    cb = EvalCallback(config, every=1, keep_best_by="precision")
    _epochs(cb, trainer, [0.0, 2.0])
    assert trainer.saved == ["best"]
    with pytest.raises(UserError, match="best checkpoint"):
        EvalCallback(config, keep_best_by="loss")
    with pytest.raises(UserError, match="--eval-every"):
        EvalCallback(config, every=0)


def test_auto_picks_the_extractor_for_the_data_and_labels_scores_with_it(
        tiny_extractor: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """16 px shapes: auto means the domain extractor (here stood in for by the tiny one), and the
    logged scores and best.json name `domain`, never `auto`."""
    from latentstudio.metrics import extractors

    tiny = extractors.EXTRACTORS["tiny"]
    monkeypatch.setitem(extractors.EXTRACTORS, "domain", lambda *args: dataclasses.replace(
        tiny(*args), name="domain", cache_id="domain-test"))
    trainer = FakeTrainer(tmp_path)
    cb = EvalCallback(EvalConfig(metrics=("fid",), n=32, extractor="auto", progress=False),
                      every=1, keep_best_by="fid")
    _epochs(cb, trainer, [0.0])
    assert "eval/fid_domain" in trainer.logged[0]
    assert json.loads((tmp_path / "checkpoints" / "best.json").read_text())["metric"] == "fid_domain"
