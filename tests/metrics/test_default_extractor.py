"""The default score: which extractor `auto` picks, that eval.json records it, that runs are
compared on one extractor only, and that it ranks a trained run above a 1-step run where lite0
did not (32 px shapes) and on Fashion-MNIST at 28 px."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latentstudio.data.base import ImageSet
from latentstudio.metrics.compare import build_table, collect_runs
from latentstudio.metrics.evaluate import EvalConfig, evaluate_run, headline_scores
from latentstudio.metrics.extractors import default_extractor
from latentstudio.train.config import TrainConfig
from latentstudio.train.loop import train


def images(resolution: int, channels: int) -> ImageSet:
    return ImageSet(torch.zeros(4, channels, resolution, resolution, dtype=torch.uint8), None, [])


def test_auto_picks_domain_for_small_or_gray_images() -> None:
    assert default_extractor(images(32, 3)) == "domain"
    assert default_extractor(images(28, 1)) == "domain"
    assert default_extractor(images(128, 1)) == "domain"
    assert default_extractor(images(64, 3)) == "lite0"


def tiny_run(root: Path, name: str, steps: int, data: str = "shapes:512",
             resolution: int = 32) -> Path:
    return train(TrainConfig(data=data, steps=steps, width=8, resolution=resolution,
                             batch_size=32, latent_dim=32, preview_every=10**6,
                             checkpoint_every=10**6, log_every=50, seed=0, device="cpu",
                             out=str(root / name)), progress=False)


def scores(run: Path) -> dict[str, float]:
    config = EvalConfig(metrics=("fid", "kid"), n=256, progress=False)
    result = evaluate_run(run, config)
    assert result.extractor == "domain"
    return result.values


def test_eval_json_records_the_default_and_cards_use_only_it(tmp_path: Path) -> None:
    run = tiny_run(tmp_path, "one", 1, data="shapes:64")
    evaluate_run(run, EvalConfig(metrics=("kid",), n=64, progress=False))
    data = json.loads((run / "eval.json").read_text())
    assert data["default_extractor"] == "domain"
    assert data["evaluations"]["domain"]["info"]["chosen"] == "default"
    # A lite0 number in the same file (from an older eval) is not what the card shows.
    data["metrics"]["kid_lite0"] = 0.001
    (run / "eval.json").write_text(json.dumps(data))
    assert [s["key"] for s in headline_scores(run)] == ["kid_domain"]
    # `runs --sort kid` orders by the extractor the runs share.
    assert build_table(collect_runs(tmp_path), sort="kid").sorted_by == "kid_domain"


@pytest.mark.slow
def test_default_score_ranks_a_trained_run_above_a_one_step_run_on_shapes(tmp_path: Path) -> None:
    torch.set_num_threads(1)
    trained, one = tiny_run(tmp_path, "trained", 200), tiny_run(tmp_path, "one", 1)
    good, bad = scores(trained), scores(one)
    assert good["kid"] < bad["kid"] and good["fid"] < bad["fid"], (good, bad)


@pytest.mark.slow
def test_default_score_ranks_a_trained_run_above_a_one_step_run_on_fashion_mnist(
        tmp_path: Path) -> None:
    from latentstudio.data import load_dataset
    from latentstudio.errors import UserError

    try:
        load_dataset("fashion-mnist", 28, progress=False, limit=8)
    except UserError as e:
        pytest.skip(f"Fashion-MNIST is not installed here ({e}); apt-get install "
                    "dataset-fashion-mnist")
    torch.set_num_threads(1)
    trained = tiny_run(tmp_path, "trained", 200, data="fashion-mnist", resolution=28)
    one = tiny_run(tmp_path, "one", 1, data="fashion-mnist", resolution=28)
    good, bad = scores(trained), scores(one)
    assert good["kid"] < bad["kid"] and good["fid"] < bad["fid"], (good, bad)
