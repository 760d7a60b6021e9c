"""Extending a run continues it: schedules keep the horizon the run started with, and a resume
that asks for no more training is refused without touching the run."""

import json
import shutil
from pathlib import Path

import pytest
import torch

from latentstudio.cli import main
from latentstudio.runs.checkpoint import load_checkpoint
from latentstudio.train.callbacks import Callback
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train

# 96 images in batches of 16: 6 steps per epoch.
TINY = dict(data="shapes:96", resolution=32, batch_size=16, width=8, latent_dim=16, log_every=2,
            preview_count=4, seed=3)
FIXTURES = Path(__file__).parent.parent / "fixtures" / "run_0_1_0"


class Schedules(Callback):
    """Reads the schedules of the trainer it is given, at chosen steps, before training."""

    def __init__(self, steps: range) -> None:
        self.steps = steps
        self.noise: dict[int, float] = {}
        self.kl: dict[int, float] = {}
        self.horizon = 0

    def on_train_start(self, trainer) -> None:
        step = trainer.updater
        self.horizon = step.schedule_steps
        x = torch.zeros(256, 1, 8, 8)
        saved = step.gen.get_state()  # the run's own noise must not notice
        for s in self.steps:
            if hasattr(step, "_d_input"):
                step.gen.manual_seed(0)  # the same noise at every step: only its strength differs
                self.noise[s] = step._d_input(x, s).std().item()
            if hasattr(step, "kl_weight"):
                self.kl[s] = step.kl_weight(s)
        step.gen.set_state(saved)


def test_instance_noise_continues_without_a_jump_when_a_run_is_extended(tmp_path: Path) -> None:
    first, extended = Schedules(range(3, 10)), Schedules(range(3, 10))
    run = train(TrainConfig(epochs=1, instance_noise=0.5, ema=0.9, out=str(tmp_path / "r"), **TINY),
                callbacks=[first], progress=False)
    train(resume=run, overrides={"epochs": 2}, callbacks=[extended], progress=False)
    assert first.horizon == extended.horizon == 6
    for s in (3, 4, 5):  # annealing towards 0 at step 6, as when the run started
        assert extended.noise[s] == pytest.approx(0.5 * (1 - s / 6), rel=0.1), s
    for s in (6, 7, 8, 9):  # and held at its end value afterwards
        assert extended.noise[s] == 0.0, s
    assert extended.noise == first.noise
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["schedule_steps"] == 6


def test_kl_warmup_continues_without_a_jump_when_a_run_is_extended(tmp_path: Path) -> None:
    first, extended = Schedules(range(4, 12)), Schedules(range(4, 12))
    run = train(TrainConfig(model="vae-conv", epochs=1, kl_warmup=8, beta=2.0,
                            out=str(tmp_path / "v"), **TINY), callbacks=[first], progress=False)
    train(resume=run, overrides={"epochs": 2}, callbacks=[extended], progress=False)
    assert extended.kl == first.kl
    assert [extended.kl[s] for s in (6, 7, 8, 9)] == [1.5, 1.75, 2.0, 2.0]


def test_a_0_1_0_run_keeps_the_horizon_it_started_with(tmp_path: Path) -> None:
    run = tmp_path / "gan_ema"
    shutil.copytree(FIXTURES / "gan_ema", run)
    started = load_checkpoint(run / "checkpoints" / "last.pt")
    assert "schedule_steps" not in started["progress"]
    seen = Schedules(range(0))
    train(resume=run, overrides={"epochs": 4}, callbacks=[seen], progress=False)
    # 64 images, batch 64 (config.json), 2 epochs when it started: 2 steps, not 4.
    assert seen.horizon == started["config"]["epochs"] * 64 // started["config"]["batch_size"]


def test_resume_that_asks_for_no_more_training_is_refused(tmp_path: Path, capsys) -> None:
    run = train(TrainConfig(epochs=2, out=str(tmp_path / "r"), **TINY), progress=False)
    config = (run / "config.json").read_bytes()
    checkpoint = (run / "checkpoints" / "last.pt").read_bytes()
    capsys.readouterr()
    for flags in (["--epochs", "2"], ["--epochs", "1"], ["--steps", "5"], ["--steps", "12"]):
        assert main(["train", "--resume", str(run), *flags]) == 2, flags
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "already at step 12 (epoch 2)" in err, err
        assert "--epochs 3" in err
    assert (run / "config.json").read_bytes() == config
    assert (run / "checkpoints" / "last.pt").read_bytes() == checkpoint


def test_epochs_extend_a_run_that_was_started_with_steps(tmp_path: Path) -> None:
    run = train(TrainConfig(steps=6, out=str(tmp_path / "r"), **TINY), progress=False)
    train(resume=run, overrides={"epochs": 2}, progress=False)
    assert load_checkpoint(run / "checkpoints" / "last.pt")["progress"]["step"] == 12
    meta = json.loads((run / "config.json").read_text())
    assert meta["config"]["epochs"] == 2 and meta["config"]["steps"] is None


def test_an_extension_without_schedules_equals_a_run_started_that_long(tmp_path: Path) -> None:
    """What the README promises for `--resume RUN --epochs N`."""
    whole = train(TrainConfig(epochs=2, ema=0.9, out=str(tmp_path / "whole"), **TINY), progress=False)
    run = train(TrainConfig(epochs=1, ema=0.9, out=str(tmp_path / "r"), **TINY), progress=False)
    train(resume=run, overrides={"epochs": 2}, progress=False)
    a, b = (load_checkpoint(r / "checkpoints" / "last.pt") for r in (whole, run))
    for name, weights in a["models"].items():
        for k, v in weights.items():
            assert torch.equal(v, b["models"][name][k]), (name, k)
    for k, opt in a["step_state"].items():
        if k.startswith("opt_"):
            for i, state in opt["state"].items():
                for s, v in state.items():
                    assert torch.equal(v, b["step_state"][k]["state"][i][s]), (k, i, s)
