"""The memorisation score: near 1 for a generator that copies, near 0 for fresh samples."""

from __future__ import annotations

import numpy as np
import torch

from latentstudio.data.shapes import make_shapes
from latentstudio.metrics.extractors import Extractor, extract_features
from latentstudio.metrics.memorisation import memorisation_score, pixel_vectors


def test_copies_score_high_and_fresh_samples_low_on_features() -> None:
    rng = np.random.default_rng(0)
    train = rng.normal(size=(400, 32))
    copies = train[rng.choice(400, 200)] + 0.01 * rng.normal(size=(200, 32))
    fresh = rng.normal(size=(200, 32))
    high, low = memorisation_score(train, copies), memorisation_score(train, fresh)
    assert high.score > 0.95 and high.median_ratio < 0.1
    assert low.score < 0.05 and 0.7 < low.median_ratio < 1.5


def test_copies_score_high_and_fresh_samples_low_on_images(tiny_extractor: Extractor) -> None:
    # A "generator" that returns training images plus small noise, against new images from the
    # same distribution (shapes drawn with another seed), seen through an extractor.
    train = make_shapes(256, 16, seed=0).images
    gen = torch.Generator().manual_seed(0)
    picks = torch.randint(0, 256, (96,), generator=gen)
    noisy = (train[picks].float() + 4 * torch.randn(96, 3, 16, 16, generator=gen)).clamp(0, 255)
    noisy = noisy.round().to(torch.uint8)
    fresh = make_shapes(96, 16, seed=1).images
    f_train = extract_features(tiny_extractor, train, progress=False)
    copying = memorisation_score(f_train, extract_features(tiny_extractor, noisy, progress=False))
    honest = memorisation_score(f_train, extract_features(tiny_extractor, fresh, progress=False))
    assert copying.score > 0.9, copying
    assert honest.score < 0.2, honest
    px_train = pixel_vectors(train)
    assert memorisation_score(px_train, pixel_vectors(noisy)).score > 0.9
    assert memorisation_score(px_train, pixel_vectors(fresh)).score < 0.1


def test_pixel_vectors_are_small_and_in_range() -> None:
    images = make_shapes(3, 64, seed=0).images
    v = pixel_vectors(images)
    assert v.shape == (3, 3 * 32 * 32) and v.dtype == np.float32 and -1 <= v.min() < v.max() <= 1
    assert np.allclose(pixel_vectors(images.float() / 127.5 - 1), v)
