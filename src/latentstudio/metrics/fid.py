"""Fréchet distance between Gaussians fitted to two sets of feature vectors (Heusel et al. 2017).

FD = |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^1/2), in float64. The trace of the matrix
square root is taken from the eigenvalues of the symmetric product S1^1/2 S2 S1^1/2, which has
the same spectrum as S1 S2 but stays real and positive semi-definite, so covariances from fewer
samples than dimensions (singular) need no epsilon hacks and never yield complex numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class GaussianStats:
    """Mean (D,) and covariance (D, D) of a set of feature vectors, float64."""

    mu: np.ndarray
    sigma: np.ndarray


def gaussian_stats(features: np.ndarray) -> GaussianStats:
    """Mean and unbiased sample covariance (ddof=1, as pytorch-fid) of (N, D) features."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError("need at least two feature vectors of shape (N, D)")
    return GaussianStats(x.mean(axis=0), np.cov(x, rowvar=False))


def _psd_sqrt(a: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix; tiny negative eigenvalues from
    rounding are clipped to zero."""
    w, v = np.linalg.eigh((a + a.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((S1 S2)^1/2) for covariance matrices S1, S2."""
    root1 = _psd_sqrt(sigma1)
    m = root1 @ sigma2 @ root1
    eig = np.linalg.eigvalsh((m + m.T) / 2)
    return float(np.sqrt(np.clip(eig, 0, None)).sum())


def frechet_distance_from_stats(a: GaussianStats, b: GaussianStats) -> float:
    """Fréchet distance between two fitted Gaussians (never negative)."""
    diff = np.asarray(a.mu, np.float64) - np.asarray(b.mu, np.float64)
    s1, s2 = np.asarray(a.sigma, np.float64), np.asarray(b.sigma, np.float64)
    fd = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2)
    return float(max(fd, 0.0))


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two (N, D) feature sets."""
    return frechet_distance_from_stats(gaussian_stats(features_a), gaussian_stats(features_b))
