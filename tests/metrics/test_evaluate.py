"""Evaluating images: seeded values, labels that name the extractor, eval.json merging."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from latentstudio.data.shapes import make_shapes
from latentstudio.errors import UserError
from latentstudio.metrics.evaluate import (
    EvalConfig,
    EvalResult,
    evaluate_images,
    format_result,
    metric_label,
    write_eval_json,
)

SMALL = dict(n=48, extractor="tiny", kid_subsets=5, kid_subset_size=24, progress=False)


def test_same_seed_same_values_and_closer_data_scores_better(tiny_extractor: object) -> None:
    real = make_shapes(64, 16, seed=0)
    fresh = make_shapes(48, 16, seed=1).images
    noise = torch.randint(0, 256, (48, 3, 16, 16), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    config = EvalConfig(**SMALL)
    good = evaluate_images(real, fresh, config)
    assert set(good.values) == {"fid", "kid", "kid_std", "precision", "recall", "density",
                                "coverage", "memorisation", "nn_ratio", "memorisation_px"}
    assert good.values == evaluate_images(real, fresh, config).values
    bad = evaluate_images(real, noise, config)
    assert bad.values["fid"] > good.values["fid"] and bad.values["kid"] > good.values["kid"]
    assert bad.values["precision"] <= good.values["precision"]
    assert bad.values["coverage"] < good.values["coverage"]
    other_seed = evaluate_images(real, fresh, EvalConfig(**{**SMALL, "n": 40, "seed": 1}))
    assert other_seed.values["fid"] != good.values["fid"]  # another real subsample


def test_float_images_in_minus1_1_score_like_uint8(tiny_extractor: object) -> None:
    real = make_shapes(64, 16, seed=0)
    fake = make_shapes(48, 16, seed=1).images
    config = EvalConfig(**{**SMALL, "metrics": ("fid",)})
    a = evaluate_images(real, fake, config).values["fid"]
    b = evaluate_images(real, fake.float() / 127.5 - 1, config).values["fid"]
    assert a == pytest.approx(b, rel=1e-5)


def test_kid_std_only_when_there_are_several_subsets(tiny_extractor: object) -> None:
    real, fake = make_shapes(48, 16, seed=0), make_shapes(48, 16, seed=1).images
    config = EvalConfig(**{**SMALL, "metrics": ("kid",), "kid_subset_size": 1000})
    assert set(evaluate_images(real, fake, config).values) == {"kid"}


def test_labels_name_the_extractor() -> None:
    assert metric_label("fid", "lite0") == "FID (lite0)"
    result = EvalResult("lite0", {"fid": 12.5, "precision": 0.5, "memorisation_px": 0.0}, 2000,
                        2000, 0)
    assert result.keyed() == {"fid_lite0": 12.5, "precision_lite0": 0.5, "memorisation_px": 0.0}
    text = format_result(result)
    assert "FID (lite0)" in text and "lower is better" in text and "precision (lite0)" in text
    assert "memorisation (pixels)" in text
    assert "note:" not in text


def test_small_images_suggest_the_domain_extractor() -> None:
    info = {"resolution": 32}
    n = 2000  # enough real images: no small-set note
    assert "--extractor domain" in format_result(EvalResult("lite0", {"fid": 1.0}, n, n, 0, info))
    assert "note:" not in format_result(EvalResult("domain", {"fid": 1.0}, n, n, 0, info))
    assert "note:" not in format_result(EvalResult("lite0", {"fid": 1.0}, n, n, 0, {"resolution": 64}))


def test_bad_settings_are_user_errors() -> None:
    with pytest.raises(UserError, match="fid, kid, pr"):
        EvalConfig(metrics=("fid", "is"))
    with pytest.raises(UserError, match="--n"):
        EvalConfig(n=2)


def test_eval_json_keeps_each_extractor(tmp_path: Path) -> None:
    write_eval_json(tmp_path, EvalResult("lite0", {"fid": 10.0}, 50, 50, 0))
    write_eval_json(tmp_path, EvalResult("domain", {"fid": 3.0}, 50, 50, 0))
    write_eval_json(tmp_path, EvalResult("lite0", {"fid": 8.0}, 50, 50, 0))
    data = json.loads((tmp_path / "eval.json").read_text())
    assert data["metrics"] == {"fid_lite0": 8.0, "fid_domain": 3.0}
    assert data["labels"]["fid_domain"] == "FID (domain)"
    assert set(data["evaluations"]) == {"lite0", "domain"}
    (tmp_path / "eval.json").write_text("{broken")
    write_eval_json(tmp_path, EvalResult("lite0", {"fid": 1.0}, 50, 50, 0))  # replaced, no crash
    assert json.loads((tmp_path / "eval.json").read_text())["metrics"] == {"fid_lite0": 1.0}
