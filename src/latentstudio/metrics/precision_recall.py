"""Improved precision/recall (Kynkäänniemi et al. 2019) and density/coverage (Naeem et al. 2020).

Each set's manifold is estimated as the union of balls around its points, with radius the
distance to the point's k-th nearest neighbour in the same set.
- precision: share of generated samples inside the real manifold (are samples realistic?)
- recall: share of real samples inside the generated manifold (is the variety covered?)
- density: how many real balls a generated sample falls in, over k, averaged (1 on average when
  the two distributions match; above 1 when samples crowd where real data is dense)
- coverage: share of real samples whose ball holds at least one generated sample
All are deterministic given the features.

On a ball's edge the two papers' reference code differ, and each metric follows its own: the
official improved precision/recall counts a point at exactly the radius as inside (`<=`); prdc,
the density/coverage reference, counts it outside (`<`). With `<=`, a set compared with a copy of
itself would get density (k+1)/k, because every ball also holds its k-th neighbour on its edge.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from latentstudio.metrics.knn import distance_chunks, knn_radii


def manifold_share(points: np.ndarray, centres: np.ndarray, radii: np.ndarray) -> float:
    """Share of `points` inside at least one ball (centres[i], radii[i])."""
    inside = np.zeros(len(points), dtype=bool)
    for rows, d in distance_chunks(points, centres):
        inside[rows] = (d.numpy() <= radii[None]).any(axis=1)
    return float(inside.mean())


@dataclass
class PrecisionRecall:
    precision: float
    recall: float
    k: int


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> PrecisionRecall:
    """Improved precision and recall of `fake` against `real` with k-NN radii (paper: k=3)."""
    precision = manifold_share(fake, real, knn_radii(real, k))
    recall = manifold_share(real, fake, knn_radii(fake, k))
    return PrecisionRecall(precision, recall, k)


@dataclass
class DensityCoverage:
    density: float
    coverage: float
    k: int


def density_coverage(real: np.ndarray, fake: np.ndarray, k: int = 5) -> DensityCoverage:
    """Density and coverage of `fake` against `real` (paper: k=5); only real balls are used,
    which makes both robust to outliers among the generated samples."""
    radii = knn_radii(real, k)
    balls_hit = 0.0
    covered = np.zeros(len(real), dtype=bool)
    for _rows, d in distance_chunks(fake, real):
        inside = d.numpy() < radii[None]
        balls_hit += inside.sum()
        covered |= inside.any(axis=0)
    return DensityCoverage(float(balls_hit / (k * len(fake))), float(covered.mean()), k)
