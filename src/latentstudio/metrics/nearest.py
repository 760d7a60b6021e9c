"""Is it copying? A sheet with each generated sample beside its nearest training images, in the
extractor's feature space and in pixel space (`latentstudio nearest RUN`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from latentstudio.data.base import ImageSet
from latentstudio.errors import UserError
from latentstudio.images import make_grid, save_png, to_uint8
from latentstudio.metrics.extractors import build_extractor, extract_features
from latentstudio.metrics.knn import nearest
from latentstudio.metrics.stats import real_features


def pixel_neighbours(samples: torch.Tensor, train: torch.Tensor, k: int) -> np.ndarray:
    """Indices (N, k) of the k training images nearest each sample in pixel L2 (uint8 inputs)."""
    a = samples.reshape(len(samples), -1).float().numpy()
    best_d = np.full((len(a), 0), np.inf)
    best_i = np.zeros((len(a), 0), dtype=np.int64)
    for start in range(0, len(train), 8192):  # blocks keep big training sets out of float64 RAM
        block = train[start:start + 8192].reshape(-1, a.shape[1]).float().numpy()
        d, i = nearest(a, block, k)
        best_d, best_i = np.concatenate([best_d, d], 1), np.concatenate([best_i, i + start], 1)
        order = np.argsort(best_d, axis=1, kind="stable")[:, :k]
        best_d, best_i = np.take_along_axis(best_d, order, 1), np.take_along_axis(best_i, order, 1)
    return best_i


def neighbour_sheet(samples: torch.Tensor, train: torch.Tensor, feature_idx: np.ndarray,
                    pixel_idx: np.ndarray, extractor: str, scale: int = 2) -> Image.Image:
    """Rows of: sample | its feature-space neighbours | its pixel-space neighbours (uint8 images)."""
    n, k = feature_idx.shape
    blank = torch.full_like(samples[:1], 255)
    tiles = []
    for i in range(n):
        tiles += [samples[i:i + 1], blank, train[feature_idx[i]], blank, train[pixel_idx[i]]]
    grid = make_grid(torch.cat(tiles), nrow=2 * k + 3)
    if scale > 1:
        grid = grid.resize((grid.width * scale, grid.height * scale), Image.NEAREST)
    header = 16
    sheet = Image.new("RGB", (grid.width, grid.height + header), "white")
    sheet.paste(grid.convert("RGB"), (0, header))
    draw = ImageDraw.Draw(sheet)
    tile = grid.width / (2 * k + 3)
    draw.text((2, 2), "sample", fill="black")
    draw.text((2 * tile, 2), f"nearest ({extractor} features)", fill="black")
    draw.text(((k + 3) * tile, 2), "nearest (pixels)", fill="black")
    return sheet


def nearest_sheet(train: ImageSet, samples: torch.Tensor, extractor_name: str = "auto",
                  k: int = 3, max_train: int | None = 10000, device: str = "cpu",
                  weights: str | None = None, seed: int = 0, batch_size: int = 64,
                  progress: bool = True) -> Image.Image:
    """The sheet for generated `samples` (uint8 or [-1, 1]) against the training set.

    Feature neighbours are searched among (a seeded sample of `max_train` of) the training
    images, with cached features; pixel neighbours among all of them.
    """
    if len(train) < k:
        raise UserError(f"the training set has {len(train)} images, fewer than k={k}")
    samples = samples if samples.dtype == torch.uint8 else to_uint8(samples)
    extractor = build_extractor(extractor_name, train, device, weights, progress)
    reals = real_features(train, extractor, max_train, seed, batch_size, progress)
    fake = extract_features(extractor, samples, batch_size, progress, "generated images")
    feature_idx = reals.index[nearest(fake, reals.features, k)[1]]
    pixel_idx = pixel_neighbours(samples.cpu(), train.images, k)
    return neighbour_sheet(samples.cpu(), train.images, feature_idx, pixel_idx, extractor.name)


def nearest_run(run_dir: str | Path, n: int = 32, k: int = 3, extractor: str = "auto",
                out: str | Path | None = None, seed: int = 0, device: str = "cpu",
                weights: str | None = None, progress: bool = True,
                checkpoint: str = "last", max_train: int | None = 10000) -> Path:
    """Sample `n` images from a run and write the neighbour sheet (default RUN/nearest.png)."""
    from latentstudio.runs import load_run

    if n <= 0 or k <= 0:
        raise UserError("--n and --k must be positive")
    run = load_run(run_dir, device=device, checkpoint=checkpoint)
    sheet = nearest_sheet(run.dataset(progress=progress), run.sample(n, seed=seed), extractor, k,
                          max_train, device=str(run.device), weights=weights, seed=seed,
                          progress=progress)
    path = Path(out) if out else Path(run.path) / "nearest.png"
    return save_png(sheet, path)
