"""KID: the unbiased MMD^2 against a direct double loop; seeded subsets."""

from __future__ import annotations

import numpy as np
import pytest

from latentstudio.metrics.kid import kernel_distance, mmd2_unbiased


def loop_reference(x: np.ndarray, y: np.ndarray) -> float:
    """MMD^2_u written term by term, straight from Gretton et al. (2012), eq. 3."""
    d = x.shape[1]

    def k(a: np.ndarray, b: np.ndarray) -> float:
        return (float(a @ b) / d + 1) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_unbiased_mmd_matches_loop_reference() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(23, 5)), rng.normal(size=(17, 5)) + 0.4
    assert mmd2_unbiased(x, y) == pytest.approx(loop_reference(x, y), rel=1e-10)


def test_kid_with_one_full_subset_is_the_plain_estimate() -> None:
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(30, 4)), rng.normal(size=(30, 4))
    r = kernel_distance(x, y, subsets=100, subset_size=1000)  # subsets = the whole sets
    assert r.mean == pytest.approx(loop_reference(x, y), rel=1e-10) and r.std == 0
    assert r.subsets == 1 and r.subset_size == 30


def test_kid_is_near_zero_for_one_distribution_and_grows_with_shift() -> None:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(600, 16))
    values = [kernel_distance(x, rng.normal(size=(600, 16)) + s, subsets=20, subset_size=200).mean
              for s in (0, 0.3, 1)]
    assert abs(values[0]) < 0.01 and values[0] < values[1] < values[2]


def test_same_seed_same_value() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(300, 8)), rng.normal(size=(300, 8)) + 0.2
    a = kernel_distance(x, y, subsets=10, subset_size=50, seed=7)
    assert a == kernel_distance(x, y, subsets=10, subset_size=50, seed=7)
    assert a.mean != kernel_distance(x, y, subsets=10, subset_size=50, seed=8).mean
    assert a.std > 0


def test_subsets_read_from_whole_kernel_matrices_give_the_same_kid(monkeypatch) -> None:
    import latentstudio.metrics.kid as kid

    rng = np.random.default_rng(3)
    real, fake = rng.normal(size=(300, 16)), rng.normal(0.2, 1.1, size=(250, 16))
    whole = kid.kernel_distance(real, fake, subsets=20, subset_size=100, seed=1)
    monkeypatch.setattr(kid, "WHOLE_KERNEL_ENTRIES", 0)  # every subset computes its own kernels
    apart = kid.kernel_distance(real, fake, subsets=20, subset_size=100, seed=1)
    assert whole.mean == pytest.approx(apart.mean, rel=1e-12)
    assert whole.std == pytest.approx(apart.std, rel=1e-9)
