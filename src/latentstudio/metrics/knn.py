"""Nearest-neighbour distances between feature sets, in float64 and in row chunks so that
10k x 10k comparisons fit in memory. Shared by precision/recall, density/coverage,
memorisation and the nearest-image sheet."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch

CHUNK = 1024


def distance_chunks(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor,
                    chunk: int = CHUNK) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (row slice of x, Euclidean distances from those rows to every row of y), float64."""
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float64)
    yt = torch.as_tensor(np.asarray(y), dtype=torch.float64)
    y_sq = (yt * yt).sum(1)
    for start in range(0, len(xt), chunk):
        rows = xt[start:start + chunk]
        # |a-b|^2 = |a|^2 + |b|^2 - 2ab; clipped because rounding can make it slightly negative.
        d2 = (rows * rows).sum(1, keepdim=True) + y_sq[None] - 2 * rows @ yt.T
        yield slice(start, start + len(rows)), d2.clamp_min_(0).sqrt_()


def knn_radii(x: np.ndarray, k: int) -> np.ndarray:
    """Distance from each row of x to its k-th nearest other row (the point itself excluded)."""
    if len(x) <= k:
        raise ValueError(f"need more than k={k} feature vectors, got {len(x)}")
    out = np.empty(len(x))
    for rows, d in distance_chunks(x, x):
        # The smallest distance is the point to itself (0), so the k-th neighbour is k+1-th.
        out[rows] = d.kthvalue(k + 1, dim=1).values.numpy()
    return out


def nearest(x: np.ndarray, y: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """For each row of x, the distances (N, k) and indices (N, k) of its k nearest rows of y."""
    k = min(k, len(y))
    dist, idx = np.empty((len(x), k)), np.empty((len(x), k), dtype=np.int64)
    for rows, d in distance_chunks(x, y):
        values, index = d.topk(k, dim=1, largest=False)
        dist[rows], idx[rows] = values.numpy(), index.numpy()
    return dist, idx
