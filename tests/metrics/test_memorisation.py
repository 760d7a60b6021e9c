"""The memorisation score: near 1 for a generator that copies, near 0 for fresh samples."""

from __future__ import annotations

import numpy as np
import torch
from conftest import make_tiny_extractor

from latentstudio.data.shapes import make_shapes
from latentstudio.metrics.extractors import extract_features
from latentstudio.metrics.memorisation import memorisation_score


def test_copies_score_high_and_fresh_samples_low_on_features() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 32))
    copies = train[rng.choice(400, 200)] + 0.01 * rng.normal(size=(200, 32))
    fresh = rng.normal(size=(200, 32))
    high, low = memorisation_score(train, copies), memorisation_score(train, fresh)
    assert high.score > 0.95 and high.median_ratio < 0.1
    assert low.score < 0.05 and 0.7 < low.median_ratio < 1.5


def test_copies_score_high_and_fresh_samples_low_on_images() -> None:
    # A "generator" that returns training images plus small noise, against new images from the
    # same distribution (shapes drawn with another seed), seen through an extractor.
    train = make_shapes(256, 16, seed=0).images
    gen = torch.Generator().manual_seed(0)
    picks = torch.randint(0, 256, (96,), generator=gen)
    noisy = (train[picks].float() + 4 * torch.randn(96, 3, 16, 16, generator=gen)).clamp(0, 255)
    fresh = make_shapes(96, 16, seed=1).images
    ext = make_tiny_extractor()
    f_train = extract_features(ext, train, progress=False)
    copying = memorisation_score(f_train, extract_features(ext, noisy.round().to(torch.uint8),
                                                           progress=False))
    honest = memorisation_score(f_train, extract_features(ext, fresh, progress=False))
    assert copying.score > 0.9, copying
    assert honest.score < 0.2, honest
