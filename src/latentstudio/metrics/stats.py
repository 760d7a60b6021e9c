"""Real-data features and Gaussian statistics, cached per (dataset fingerprint, extractor,
resolution, sample count) in cache_dir()/metrics/stats/, so a second evaluation against the same
data skips the slow pass over the real images."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from latentstudio import atomic
from latentstudio.data.base import ImageSet
from latentstudio.metrics.extractors import Extractor, extract_features
from latentstudio.metrics.fid import GaussianStats, gaussian_stats
from latentstudio.paths import cache_dir


@dataclass
class RealFeatures:
    """Features (N, D) float32 of N real images, their Gaussian fit, and which images they were."""

    features: np.ndarray
    stats: GaussianStats
    index: np.ndarray
    cache_path: Path | None = None


def real_subset(n_total: int, n: int | None, seed: int) -> np.ndarray:
    """Indices of the real images to use: all, or a seeded sample of n without replacement."""
    if n is None or n >= n_total:
        return np.arange(n_total)
    return np.sort(np.random.default_rng(seed).choice(n_total, n, replace=False))


def stats_cache_path(dataset: ImageSet, extractor: Extractor, n: int | None, seed: int) -> Path:
    count = "all" if n is None or n >= len(dataset) else f"n{n}-s{seed}"
    name = f"{dataset.fingerprint()}-{extractor.cache_id}-{dataset.resolution}px-{count}.pt"
    return cache_dir() / "metrics" / "stats" / name


def real_features(dataset: ImageSet, extractor: Extractor, n: int | None = None, seed: int = 0,
                  batch_size: int = 64, progress: bool = True, cache: bool = True) -> RealFeatures:
    """Features and statistics of (a seeded sample of `n` of) the real images, cached."""
    path = stats_cache_path(dataset, extractor, n, seed)
    if cache and path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            return RealFeatures(saved["features"].numpy(),
                                GaussianStats(saved["mu"].numpy(), saved["sigma"].numpy()),
                                saved["index"].numpy(), path)
        except (RuntimeError, KeyError, OSError, EOFError):
            pass  # unreadable cache entry: compute again and overwrite it
    index = real_subset(len(dataset), n, seed)
    feats = extract_features(extractor, dataset.images[torch.from_numpy(index)], batch_size,
                             progress, desc="real images")
    stats = gaussian_stats(feats)
    if cache:
        atomic.save_torch(path, {"features": torch.from_numpy(feats), "mu": torch.from_numpy(stats.mu),
                                 "sigma": torch.from_numpy(stats.sigma),
                                 "index": torch.from_numpy(index)})
    return RealFeatures(feats, stats, index, path if cache else None)
