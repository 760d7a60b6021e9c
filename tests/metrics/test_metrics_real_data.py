"""Slow sanity checks of FID (lite0) on real data (run with `pytest -m slow tests/metrics -s`).

Two disjoint halves of Fashion-MNIST must be far closer than Fashion-MNIST and `shapes`, and
noise added to real images must raise the distance step by step. The memorisation score must be
near 0 for the held-out half and high for noisy copies of training images. Needs the Fashion-MNIST files
(the dataset-fashion-mnist system package, or a download).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from latentstudio.data import load_dataset
from latentstudio.data.shapes import make_shapes
from latentstudio.metrics.extractors import build_extractor, extract_features
from latentstudio.metrics.fid import frechet_distance
from latentstudio.metrics.kid import kernel_distance
from latentstudio.metrics.memorisation import memorisation_score, pixel_vectors
from latentstudio.metrics.precision_recall import precision_recall

N = 1000
NOISE = (0.1, 0.2, 0.4)  # std of Gaussian noise on images in [-1, 1]
COPY_NOISE = (0.02, 0.05)


@pytest.mark.slow
def test_fid_lite0_separates_datasets_and_rises_with_noise() -> None:
    fashion = load_dataset("fashion-mnist", 28, progress=False)
    order = torch.randperm(len(fashion), generator=torch.Generator().manual_seed(0))
    half_a, half_b = fashion.images[order[:N]], fashion.images[order[N:2 * N]]
    shapes = make_shapes(N, 28, channels=1, seed=0).images
    ext = build_extractor("lite0")
    f_a, f_b, f_shapes = (extract_features(ext, x, desc=name) for x, name in
                          ((half_a, "half A"), (half_b, "half B"), (shapes, "shapes")))
    gen = torch.Generator().manual_seed(1)
    b = half_b.float() / 127.5 - 1
    f_noisy = [extract_features(ext, (b + s * torch.randn(b.shape, generator=gen)).clamp(-1, 1),
                                desc=f"noise {s}") for s in NOISE]
    copies = half_a[:300].float() / 127.5 - 1
    noisy_copies = {s: (copies + s * torch.randn(copies.shape, generator=gen)).clamp(-1, 1)
                    for s in COPY_NOISE}

    def memorisation(images: torch.Tensor, feats: np.ndarray) -> dict[str, float]:
        return {"features": memorisation_score(f_a, feats).score,
                "pixels": memorisation_score(pixel_vectors(half_a), pixel_vectors(images)).score}

    def row(f: np.ndarray) -> dict[str, float]:
        pr = precision_recall(f_a, f)
        return {"fid_lite0": frechet_distance(f_a, f), "kid_lite0": kernel_distance(f_a, f).mean,
                "precision": pr.precision, "recall": pr.recall}

    report = {"halves": row(f_b), "fashion_vs_shapes": row(f_shapes),
              **{f"half_b_noise_{s}": row(f) for s, f in zip(NOISE, f_noisy, strict=True)},
              "memorisation_half_b": memorisation(half_b, f_b),
              **{f"memorisation_copies_noise_{s}": memorisation(x, extract_features(ext, x,
                                                                desc=f"copies {s}"))
                 for s, x in noisy_copies.items()}}
    print(json.dumps(report, indent=2))
    fids = [report["halves"]["fid_lite0"]] + [report[f"half_b_noise_{s}"]["fid_lite0"] for s in NOISE]
    assert report["halves"]["fid_lite0"] * 5 < report["fashion_vs_shapes"]["fid_lite0"]
    assert fids == sorted(fids) and len(set(fids)) == len(fids)
    assert max(report["memorisation_half_b"].values()) < 0.05
    assert report["memorisation_copies_noise_0.02"]["features"] > 0.5
    for s in COPY_NOISE:  # pixels catch noisy copies that ImageNet features lose
        assert report[f"memorisation_copies_noise_{s}"]["pixels"] > 0.9
