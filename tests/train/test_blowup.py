"""The divergence guard catches finite blow-ups as it catches NaN, and never a healthy run."""

import random
from pathlib import Path
from types import SimpleNamespace

from latentstudio.cli import main
from latentstudio.train.loop import Trainer

TINY_FLAGS = ["--data", "shapes:96", "--width", "8", "--batch-size", "16", "--latent-dim", "16",
              "--preview-count", "4", "--log-every", "2", "--seed", "3"]


def _blowup(windows: list[dict[str, float]]) -> list[str | None]:
    guard = SimpleNamespace(_scale={})
    return [Trainer._blowup(guard, w) for w in windows]


def test_a_huge_finite_learning_rate_ends_in_one_line_and_exit_2(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    assert main(["train", *TINY_FLAGS, "--epochs", "3", "--lr", "1e6", "--out", str(run)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: training diverged") and "exploded" in err[-1], err
    assert "lower --lr" in err[-1]
    assert sum("restored the last checkpoint" in line for line in err) == 3


def test_moderate_unbounded_losses_never_trigger_the_guard() -> None:
    rng = random.Random(0)
    # A WGAN critic: losses drift over orders of magnitude, with sign changes and noisy windows.
    windows = [{"loss_d": -0.01 * 1.05 ** i * rng.uniform(-3, 3), "loss_g": 0.02 * 1.05 ** i,
                "d_real": 1.04 ** i, "d_fake": -(1.04 ** i) * rng.uniform(0, 2)} for i in range(300)]
    # A VAE at 128 px: a summed reconstruction in the 1e5s and a KL that starts near 0.
    windows += [{"loss": 2e5 / (1 + i), "recon": 2e5 / (1 + i), "kl": 0.001 * i} for i in range(50)]
    assert _blowup(windows) == [None] * len(windows)


def test_finite_blowups_are_caught() -> None:
    assert _blowup([{"loss_d": 3e13}]) == ["loss_d exploded to 3e+13"]
    history = [{"loss_g": 1.0 + 0.1 * i} for i in range(5)]
    assert _blowup([*history, {"loss_g": 2e5}])[-1] == "loss_g exploded to 2e+05"
    assert _blowup([*history, {"loss_g": float("inf")}])[-1] == "non-finite loss_g"
