"""Is the generator copying its training images? A memorisation score, in feature space and
in (downsampled) pixel space.

The typical spacing of the training set is the median distance from a training image to its
nearest other training image. A generated sample counts as copy-like when its nearest training
image is closer than `threshold` times that spacing. The threshold is below 1 on purpose: a
generator that draws fresh images from the data distribution lands about as close to the
training set as training images are to each other, so with a threshold of 1 it would score
about 0.5; at 0.5 it scores near 0, while copies score near 1.

Both spaces are needed: ImageNet features of small upscaled images are very sensitive to pixel
noise (on Fashion-MNIST, copies with noise of std 0.05 in [-1, 1] sit as far from their originals
in lite0 space as fresh images do), while pixel distance barely moves; pixel distance, in turn,
misses copies that are shifted or recoloured, which features still catch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from latentstudio.images import from_uint8
from latentstudio.metrics.knn import knn_radii, nearest


@dataclass
class Memorisation:
    """score: share of copy-like samples; median_ratio: median over samples of (distance to the
    nearest training image / typical spacing), about 1 for fresh samples and near 0 for copies."""

    score: float
    median_ratio: float
    typical_distance: float
    threshold: float


def memorisation_score(train: np.ndarray, fake: np.ndarray, threshold: float = 0.5) -> Memorisation:
    """Memorisation of `fake` features against the `train` features they were trained on."""
    typical = float(np.median(knn_radii(train, 1)))
    dist, _ = nearest(fake, train, 1)
    ratio = dist[:, 0] / max(typical, 1e-12)
    return Memorisation(float((ratio < threshold).mean()), float(np.median(ratio)), typical,
                        threshold)


def pixel_vectors(images: torch.Tensor, max_size: int = 32) -> np.ndarray:
    """Images (uint8 or [-1, 1]) as flat float32 vectors in [-1, 1], area-downsampled to at most
    `max_size` px so that 10k x 10k comparisons stay cheap at any resolution."""
    x = from_uint8(images) if images.dtype == torch.uint8 else images.float()
    if x.shape[-1] > max_size:
        x = F.interpolate(x, size=(max_size, max_size), mode="area")
    return x.reshape(len(x), -1).cpu().numpy()
