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
    assert dc.density == pytest.approx(6 / 5)  # each real ball holds its centre and 5 neighbours


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
