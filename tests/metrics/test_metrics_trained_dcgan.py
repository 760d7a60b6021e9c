"""Slow check on `shapes` (run with `pytest -m slow tests/metrics -s`): a trained DCGAN must beat
an untrained one and a deliberately corrupted "generator" (real held-out shapes with their colour
channels rotated: right shapes, wrong colours) on FID, KID, precision, recall, density and
coverage; and its memorisation score must be low, since 6000 images exceed what it can store.

The DCGAN is trained exactly like `latentstudio demo` (its settings are imported). Observed on
2026-11-29 (2 CPU cores): trained FID (lite0) 190, untrained 233, wrong colours 40; precision,
recall, density and coverage 0.0 for both generators (0.13-0.16 for the wrong colours). So this
still FAILS: the demo's samples show the shapes to the eye, but their soft edges keep them off the
real manifold in lite0 features. Training 3x longer (72 epochs) did not help: the samples were
best near epoch 48, then collapsed to noise once the instance noise had annealed away (FID 357).
It checks that the trainer reaches useful quality, not just the metrics; a better-trained
generator is the way to make it pass, not a looser bar.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from latentstudio.commands.train import DEMO
from latentstudio.data.shapes import make_shapes
from latentstudio.metrics.evaluate import EvalConfig, evaluate_images
from latentstudio.metrics.extractors import build_extractor
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train
from latentstudio.train.run import load_run

N = 1000
SETTINGS = {**DEMO, "preview_every": 100, "device": "auto"}


@pytest.mark.slow
def test_trained_dcgan_beats_untrained_and_wrong_colours(tmp_path: Path) -> None:
    trained = load_run(train(TrainConfig(**SETTINGS, out=str(tmp_path / "trained"))))
    untrained = load_run(train(TrainConfig(**{**SETTINGS, "steps": 1}, out=str(tmp_path / "untrained")),
                               progress=False))
    real = trained.dataset()
    wrong_colours = make_shapes(N, 32, seed=99).images[:, [1, 2, 0]]  # held out, RGB -> GBR
    config = EvalConfig(n=N, progress=True)
    extractor = build_extractor("lite0")
    results = {name: evaluate_images(real, fake, config, extractor).values for name, fake in [
        ("trained", trained.sample(N, seed=1)), ("untrained", untrained.sample(N, seed=1)),
        ("wrong_colours", wrong_colours)]}
    print(json.dumps(results, indent=2))
    t = results["trained"]
    for other in ("untrained", "wrong_colours"):
        o = results[other]
        assert t["fid"] < o["fid"] and t["kid"] < o["kid"], other
        for key in ("precision", "recall", "density", "coverage"):
            assert t[key] > o[key], (other, key)
    assert t["memorisation"] < 0.05 and t["memorisation_px"] < 0.05
