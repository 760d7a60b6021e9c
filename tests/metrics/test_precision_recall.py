"""Precision/recall and density/coverage: brute-force radii, identical sets, shifted sets."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from latentstudio.metrics.knn import knn_radii, nearest
from latentstudio.metrics.precision_recall import density_coverage, precision_recall


def test_knn_radii_and_nearest_match_brute_force() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(1500, 6)), rng.normal(size=(40, 6))  # > one chunk of rows
    d = cdist(x, x)
    np.fill_diagonal(d, np.inf)
    assert np.allclose(knn_radii(x, 3), np.sort(d, axis=1)[:, 2], atol=1e-9)
    dist, idx = nearest(y, x, 2)
    ref = cdist(y, x)
    assert np.array_equal(idx, np.argsort(ref, axis=1)[:, :2])
    assert np.allclose(dist, np.sort(ref, axis=1)[:, :2], atol=1e-9)


def test_identical_sets_have_full_precision_recall_and_coverage() -> None:
    x = np.random.default_rng(1).normal(size=(300, 8))
    pr = precision_recall(x, x.copy())
    assert (pr.precision, pr.recall) == (1.0, 1.0)
    dc = density_coverage(x, x.copy(), k=5)
    assert dc.coverage == 1.0
    # Each ball holds its centre and 4 neighbours; the 5th sits on the edge, which prdc leaves out.
    assert dc.density == pytest.approx(1.0)


def _brute_force(real: np.ndarray, fake: np.ndarray, k: int) -> tuple[float, float, float, float]:
    """The reference formulas written out on full distance matrices: precision/recall as in
    Kynkäänniemi et al.'s code (edge inside, `<=`), density/coverage as in prdc (edge outside, `<`)."""
    def radii(x: np.ndarray) -> np.ndarray:
        return np.sort(cdist(x, x), axis=1)[:, k]  # column 0 is the point itself

    d = cdist(real, fake)  # real x fake
    r_real, r_fake = radii(real), radii(fake)
    precision = (d <= r_real[:, None]).any(axis=0).mean()
    recall = (d <= r_fake[None, :]).any(axis=1).mean()
    density = (d < r_real[:, None]).sum(axis=0).mean() / k
    coverage = (d.min(axis=1) < r_real).mean()
    return precision, recall, density, coverage


def test_match_the_reference_formulas_when_points_sit_on_ball_edges() -> None:
    # Small integer features: many distances tie exactly with a k-NN radius, so `<` against `<=`
    # changes the result (and distances of integers are exact in float64).
    rng = np.random.default_rng(5)
    real, fake = rng.integers(0, 3, size=(120, 3)), rng.integers(0, 3, size=(90, 3))
    fake[:30] = real[:30]
    for k in (3, 5):
        pr, dc = precision_recall(real, fake, k=k), density_coverage(real, fake, k=k)
        got = (pr.precision, pr.recall, dc.density, dc.coverage)
        assert got == pytest.approx(_brute_force(real, fake, k), abs=1e-12)


def test_values_fall_as_one_set_moves_away() -> None:
    rng = np.random.default_rng(2)
    real, fake = rng.normal(size=(500, 8)), rng.normal(size=(500, 8))
    rows = []
    for shift in (0, 0.5, 1, 2, 4):
        pr = precision_recall(real, fake + shift)
        dc = density_coverage(real, fake + shift)
        rows.append((pr.precision, pr.recall, dc.density, dc.coverage))
    rows = np.array(rows)
    assert rows[0, 0] > 0.6 and rows[0, 1] > 0.6  # same distribution: high (finite-sample < 1)
    assert 0.7 < rows[0, 2] < 1.3 and rows[0, 3] > 0.8  # density ~1 when distributions match
    assert np.all(np.diff(rows, axis=0) <= 0), rows
    assert np.all(rows[-1] < 0.05)


def test_precision_recall_separate_quality_from_variety() -> None:
    rng = np.random.default_rng(3)
    real = rng.normal(size=(500, 4))
    collapsed = rng.normal(size=(500, 4)) * 0.2  # realistic but little variety
    pr = precision_recall(real, collapsed)
    assert pr.precision > 0.9 and pr.recall < 0.3
    dc = density_coverage(real, collapsed)
    assert dc.coverage < 0.5


def test_deterministic() -> None:
    rng = np.random.default_rng(4)
    real, fake = rng.normal(size=(200, 5)), rng.normal(size=(200, 5)) + 0.3
    assert precision_recall(real, fake) == precision_recall(real, fake)
    assert density_coverage(real, fake) == density_coverage(real, fake)
