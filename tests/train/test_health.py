"""The training health monitor: each detector on synthetic inputs, a forced collapse that it
reports (terminal, metrics.jsonl, gallery), and a healthy run it leaves alone."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from latentstudio.train import health
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import Trainer, train

TINY = dict(data="shapes:96", resolution=32, batch_size=8, width=8, latent_dim=16, seed=3,
            preview_count=4, preview_every="1h", device="cpu")


def test_spread_is_zero_for_identical_images_and_grows_with_variety() -> None:
    g = torch.Generator().manual_seed(0)
    same = torch.rand(1, 3, 32, 32, generator=g).repeat(8, 1, 1, 1)
    assert health.spread(same) == 0
    varied = torch.rand(8, 3, 32, 32, generator=g) * 2 - 1
    assert health.spread(varied) > health.spread(varied * 0.1) > 0


def test_collapse_needs_low_variety_after_some_training() -> None:
    assert health.collapsed(0.0, step=health.IDENTICAL_AFTER_STEPS)
    assert not health.collapsed(0.0, step=10)  # a new generator's samples are alike
    assert not health.collapsed(0.1, step=500)  # still learning variety
    assert health.collapsed(0.1, step=500, peak=0.5)  # had it and lost it
    assert health.collapsed(0.1, step=health.COLLAPSE_AFTER_STEPS)
    assert not health.collapsed(0.5, step=10_000, peak=0.6)


@pytest.mark.parametrize("loss, values, won", [
    ("bce", {"d_real": 6.0, "d_fake": -6.0}, True),
    ("bce", {"d_real": 4.2, "d_fake": -4.2}, False),  # a healthy DCGAN on shapes got there
    ("hinge", {"d_real": 2.6, "d_fake": -2.3}, True),  # FastGAN without augmentation, 100 emoji
    ("hinge", {"d_real": 1.9, "d_fake": -1.8}, False),  # FastGAN with DiffAugment, still improving
    ("hinge", {"d_real": 0.6, "d_fake": -4.5}, False),  # reals inside the margin
    ("wasserstein", {"d_real": 50.0, "d_fake": -50.0}, False),  # a critic is unbounded
    ("bce", {"d_real": 0.1, "d_fake": 0.0, "ada_p": 1.0, "ada_r": 0.97}, True),
    ("bce", {"d_real": 9.0, "d_fake": -9.0, "ada_p": 0.3, "ada_r": 0.97}, False),  # ada has room
    ("bce", {"loss": 3.0}, False),
])
def test_discriminator_separates(loss: str, values: dict, won: bool) -> None:
    assert health.discriminator_separates(loss, values) is won


def test_ema_horizon() -> None:
    # A ramped EMA's half-life is at most rampup x images seen: never "warming".
    assert health.ema_horizon(0.999, 0.05, step=10, batch_size=64) == pytest.approx(0.05)
    assert health.ema_horizon(0.999, 0.05, step=10**6, batch_size=64) < 0.05
    # Without the ramp, 0.999 is a half-life of 693 steps: warming for the first few thousand.
    assert health.ema_horizon(0.999, 0.0, step=100, batch_size=64) > 1
    assert health.ema_horizon(0.999, 0.0, step=10_000, batch_size=64) < health.EMA_WARMING_FRACTION


def _monitor(loss: str = "bce") -> tuple[health.HealthMonitor, SimpleNamespace]:
    """A monitor of a stand-in GAN trainer whose step and spread the test sets."""
    monitor = health.HealthMonitor(stream=io.StringIO())
    monitor.adversarial, monitor._measured_at = True, 0.0
    trainer = SimpleNamespace(config=SimpleNamespace(loss=loss, ema_rampup=0.05, batch_size=16,
                                                     augment="none"),
                              updater=SimpleNamespace(ema=None), step=0, elapsed=0.0)
    return monitor, trainer


def test_the_discriminator_must_win_for_a_while() -> None:
    monitor, trainer = _monitor()
    won, lost = {"d_real": 7.0, "d_fake": -6.0}, {"d_real": 2.0, "d_fake": -2.0}
    states = []
    for step, values in [(50, won), (100, won), (150, lost), (200, won), (250, won), (300, won)]:
        trainer.step = step
        states.append(monitor.check(trainer, values)["health"])
    assert states == ["ok", "ok", "ok", "ok", "ok", "d_won"]
    assert monitor.stream.getvalue().count("health:") == 1


def test_a_won_discriminator_stays_won_through_a_short_gap() -> None:
    monitor, trainer = _monitor()
    won, lost = {"d_real": 7.0, "d_fake": -6.0}, {"d_real": 2.0, "d_fake": -2.0}
    states = []
    for step, values in [(50, won), (150, won), (160, lost), (200, lost), (210, won), (220, lost),
                         (260, lost), (270, lost)]:
        trainer.step = step
        states.append(monitor.check(trainer, values)["health"])
    assert states == ["ok", "d_won", "d_won", "d_won", "d_won", "d_won", "d_won", "ok"]
    assert monitor.stream.getvalue().count("health:") == 2  # won, then well again


def test_a_collapsed_run_is_well_again_only_clearly() -> None:
    monitor, trainer = _monitor()
    states = []
    for step, ratio in [(300, 0.5), (400, 0.1), (500, 0.16), (600, 0.2), (700, 0.3)]:
        trainer.step, monitor.ratio = step, ratio
        monitor.peak = max(monitor.peak, ratio)
        states.append(monitor.check(trainer, {})["health"])
    assert states == ["ok", "collapse", "collapse", "collapse", "ok"]  # no flapping at 0.15


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _constant_samples(self: Trainer, z: torch.Tensor, labels=None, calibration_images=0) -> torch.Tensor:
    """A generator that ignores its latents: every sample is the same picture."""
    picture = torch.linspace(-1, 1, 32 * 32).reshape(1, 1, 32, 32)
    return picture.expand(len(z), 3, 32, 32).clone()


@pytest.fixture(scope="module")
def collapsed_run(tmp_path_factory) -> tuple[Path, str]:
    """A 200-step run whose generator returns one picture for every latent, and its stderr."""
    import contextlib
    import io

    out = tmp_path_factory.mktemp("collapse") / "collapsed"
    err = io.StringIO()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    with pytest.MonkeyPatch.context() as mp, contextlib.redirect_stderr(err):
        mp.setattr(Trainer, "sample", _constant_samples)
        train(TrainConfig(steps=health.IDENTICAL_AFTER_STEPS, log_every=50, out=str(out), **TINY),
              progress=False)
    torch.set_num_threads(before)
    return out, err.getvalue()


def test_a_forced_collapse_is_reported(collapsed_run) -> None:
    run, stderr = collapsed_run
    lines = [line for line in stderr.splitlines() if line.startswith("health:")]
    assert len(lines) == 1 and "mode collapse" in lines[0] and "--augment" in lines[0], stderr
    records = _records(run)
    assert records[0]["health"] == "ok" and records[0]["diversity"] == 0  # too early to say
    last = records[-1]
    assert last["step"] == health.IDENTICAL_AFTER_STEPS and last["health"] == "collapse"
    assert last["diversity"] == 0 and "mode collapse" in last["health_message"]


@pytest.mark.filterwarnings("ignore:Using `httpx`")
def test_the_gallery_shows_the_collapse(collapsed_run, tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    root = tmp_path / "runs"
    shutil.copytree(collapsed_run[0], root / "collapsed", ignore=shutil.ignore_patterns("tb"))
    client = TestClient(create_app(root))
    card = client.get("/api/runs").json()["runs"][0]
    assert card["health"]["state"] == "collapse" and "mode collapse" in card["health"]["message"]
    detail = client.get("/api/runs/collapsed").json()
    assert detail["health"] == card["health"]
    assert [g["step"] for g in detail["grids"]] == [0, health.IDENTICAL_AFTER_STEPS]
    page = client.get("/").text  # the first paint, before the script runs
    assert 'class="health collapse"' in page and "mode collapse" in page


def test_a_healthy_run_stays_quiet(tmp_path: Path, capsys, one_thread) -> None:
    run = train(TrainConfig(steps=health.IDENTICAL_AFTER_STEPS, log_every=50, out=str(tmp_path / "ok"),
                            **TINY), progress=False)
    assert "health:" not in capsys.readouterr().err
    records = _records(run)
    assert {r["health"] for r in records} == {"ok"}
    assert records[-1]["diversity"] > health.IDENTICAL_RATIO


def test_a_slow_ema_says_it_is_warming_up(tmp_path: Path, capsys, one_thread) -> None:
    run = train(TrainConfig(steps=4, log_every=2, ema=0.999, ema_rampup=0.0,
                            out=str(tmp_path / "ema"), **TINY), progress=False)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("health:")]
    assert len(err) == 1 and "EMA" in err[0] and "warming" in err[0]
    assert [r["health"] for r in _records(run)] == ["ema_warming", "ema_warming"]


def test_a_vae_gets_no_discriminator_check(tmp_path: Path, one_thread) -> None:
    run = train(TrainConfig(model="vae-conv", steps=4, log_every=2, out=str(tmp_path / "vae"),
                            **{**TINY, "latent_dim": 8}), progress=False)
    records = _records(run)
    assert records[-1]["health"] == "ok" and "diversity" in records[-1]
    assert "d_won_steps" not in records[-1]
