"""Fréchet distance: against a scipy reference, the Gaussian closed form, and edge cases."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import linalg

from latentstudio.metrics.fid import frechet_distance, frechet_distance_from_stats, gaussian_stats


def scipy_reference(x: np.ndarray, y: np.ndarray) -> float:
    """The textbook formula with scipy.linalg.sqrtm, in float64 (as pytorch-fid computes it)."""
    mu1, mu2 = x.mean(0), y.mean(0)
    s1, s2 = np.cov(x, rowvar=False), np.cov(y, rowvar=False)
    covmean = linalg.sqrtm(s1 @ s2).real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("dim", [2, 16, 64])
def test_matches_scipy_reference_on_random_gaussians(dim: int) -> None:
    rng = np.random.default_rng(dim)
    a = rng.normal(size=(dim, dim))
    x = rng.normal(size=(500, dim)) @ a
    y = rng.normal(size=(400, dim)) @ (a + 0.3 * rng.normal(size=(dim, dim))) + 0.5
    expected = scipy_reference(x, y)
    assert frechet_distance(x, y) == pytest.approx(expected, rel=1e-8, abs=1e-8)


def test_equals_closed_form_for_diagonal_covariances() -> None:
    # FD between N(m1, diag(v1)) and N(m2, diag(v2)) is |m1-m2|^2 + sum (sqrt v1 - sqrt v2)^2.
    rng = np.random.default_rng(0)
    m1, m2 = rng.normal(size=8), rng.normal(size=8)
    v1, v2 = rng.uniform(0.1, 3, size=8), rng.uniform(0.1, 3, size=8)
    a = gaussian_stats(np.zeros((2, 8)))
    a.mu, a.sigma = m1, np.diag(v1)
    b = gaussian_stats(np.zeros((2, 8)))
    b.mu, b.sigma = m2, np.diag(v2)
    expected = ((m1 - m2) ** 2).sum() + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance_from_stats(a, b) == pytest.approx(expected, rel=1e-12)


def test_equals_closed_form_for_commuting_full_covariances() -> None:
    # S1 = Q diag(l1) Q^T, S2 = Q diag(l2) Q^T commute: tr sqrt(S1 S2) = sum sqrt(l1 l2).
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.normal(size=(6, 6)))
    l1, l2 = rng.uniform(0.5, 2, 6), rng.uniform(0.5, 2, 6)
    a, b = gaussian_stats(np.zeros((2, 6))), gaussian_stats(np.zeros((2, 6)))
    a.mu, a.sigma = np.zeros(6), q @ np.diag(l1) @ q.T
    b.mu, b.sigma = np.ones(6), q @ np.diag(l2) @ q.T
    expected = 6 + ((np.sqrt(l1) - np.sqrt(l2)) ** 2).sum()
    assert frechet_distance_from_stats(a, b) == pytest.approx(expected, rel=1e-10)


def test_distance_to_itself_is_zero_even_when_covariance_is_singular() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1000, 32))
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-8)
    few = rng.normal(size=(20, 64))  # fewer samples than dimensions: rank-deficient covariance
    assert frechet_distance(few, few) == pytest.approx(0, abs=1e-6)
    other = rng.normal(size=(20, 64)) + 1
    d = frechet_distance(few, other)
    assert np.isfinite(d) and d > 0


def test_symmetric_and_grows_with_shift() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 10)), rng.normal(size=(300, 10))
    assert frechet_distance(x, y) == pytest.approx(frechet_distance(y, x), rel=1e-9)
    shifts = [frechet_distance(x, y + s) for s in (0, 0.5, 1, 2)]
    assert shifts == sorted(shifts)
