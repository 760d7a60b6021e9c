"""VAE latent maps: where the encoder puts held-out data, and what the decoder draws across a plane.

The scatter shows the encoder's means of N images coloured by label: the latent itself when it is
2-D, else its first two principal components. The manifold decodes a regular grid over that plane
at Gaussian quantiles 5%...95% (Kingma & Welling 2013, fig. 4), so for a 2-D latent the grid
covers the prior's mass evenly; in higher dimensions the grid spans the same quantiles of the
data's spread along the two components, centred on the data's mean latent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from scipy.stats import norm

from latentstudio.data import load_dataset
from latentstudio.errors import UserError
from latentstudio.explore.latents import check_output, latent_dim_of
from latentstudio.images import from_uint8, on_checkerboard, to_uint8
from latentstudio.runs import Run, load_run

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass
class LatentMap:
    """Plane coordinates (N, 2) of the encoded images, their labels, and the files written."""

    coords: np.ndarray
    labels: np.ndarray | None
    scatter: Path
    manifold: Path
    pca: bool


def encode(run: Run, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Encoder means (N, D) for uint8 images."""
    return torch.cat([run.encode(from_uint8(images[i:i + batch_size]))
                      for i in range(0, len(images), batch_size)])


def plane(mu: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centre (D,), axes (2, D) scaled by the data's std along them, coords (N, 2) in std units).

    A 2-D latent is its own plane (centre 0, unit axes); more dimensions use PCA by SVD.
    """
    d = mu.shape[1]
    if d <= 2:
        axes = np.eye(2, d)
        return np.zeros(d), axes, mu @ axes.T
    centre = mu.mean(0)
    _, s, vt = np.linalg.svd(mu - centre, full_matrices=False)
    std = s[:2] / np.sqrt(max(len(mu) - 1, 1))
    axes = vt[:2] * std[:, None]
    coords = (mu - centre) @ vt[:2].T / np.maximum(std, 1e-12)
    return centre, axes, coords


def latent_map(run_path: str | os.PathLike, out: str | os.PathLike, n: int = 2000, grid: int = 15,
               data: str | None = None, checkpoint: str = "last", device: str = "cpu") -> LatentMap:
    """Write OUT-scatter.png and OUT-manifold.png for a VAE run (`out` is a prefix or a .png)."""
    if n <= 0 or grid <= 1:
        raise UserError(f"--n must be positive and --grid at least 2, got {n} and {grid}")
    base = Path(out)
    base = base.with_suffix("") if base.suffix.lower() == ".png" else base
    scatter_path = check_output(base.parent / f"{base.name}-scatter.png", (".png",))
    manifold_path = check_output(base.parent / f"{base.name}-manifold.png", (".png",))
    run = load_run(run_path, device=device, checkpoint=checkpoint)
    latent_dim_of(run)
    if "encoder" not in run.models:
        raise UserError(f"latent-map needs a VAE run (it encodes images); {run.path} is a "
                        f"{run.config.model} - try `interpolate` or `vector` instead")
    cfg = run.config
    # A different seed than training: procedural data (shapes) then gives unseen images.
    images = load_dataset(data or cfg.data, cfg.resolution, run.model_config.channels, cfg.fit,
                          seed=cfg.seed + 1, limit=n, progress=False)
    mu = encode(run, images.images[:n]).numpy().astype(np.float64)
    labels = images.labels[:n].numpy() if images.labels is not None else None
    centre, axes, coords = plane(mu)
    q = norm.ppf(np.linspace(0.05, 0.95, grid))
    uv = np.stack(np.meshgrid(q, q[::-1], indexing="xy"), -1).reshape(-1, 2)  # top row: high v
    z = torch.from_numpy(centre + uv @ axes).float()
    decoded = run.generate(z, run.labels_for(len(z), 0) if run.model_config.num_classes else None)
    pca = mu.shape[1] > 2
    source = data or cfg.data
    # Only a procedural source gives images the model never saw (the seed above); any other
    # source, a folder included, hands back training images: say which, not "test data".
    seen = "fresh" if source.partition(":")[0] == "shapes" else (
        "training" if source == cfg.data else "")
    title = f"Encoded {seen + ' ' if seen else ''}images ({len(coords)} from {source})"
    _plot_scatter(coords, labels, images.class_names, scatter_path, pca, title)
    _plot_manifold(decoded, grid, q, manifold_path, pca)
    return LatentMap(coords, labels, scatter_path, manifold_path, pca)


def _axis_names(pca: bool) -> tuple[str, str]:
    return ("PC 1 (std units)", "PC 2 (std units)") if pca else ("z[0]", "z[1]")


def _save(fig: Figure, path: Path, points: int | None = None, title: str | None = None) -> None:
    import io

    from latentstudio import atomic

    buf = io.BytesIO()
    meta = {"Software": "latentstudio"} | ({"Points": str(points)} if points is not None else {})
    meta |= {"Title": title} if title else {}
    fig.savefig(buf, format="png", dpi=100, metadata=meta)
    try:
        atomic.write_bytes(path, buf.getvalue())
    except OSError as e:
        raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def _plot_scatter(coords: np.ndarray, labels: np.ndarray | None, names: list[str], path: Path,
                  pca: bool, title: str) -> None:
    import matplotlib
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 6))
    ax = fig.subplots()
    if labels is None:
        ax.scatter(coords[:, 0], coords[:, 1], s=6, alpha=0.7)
    else:
        cmap = matplotlib.colormaps["tab10" if labels.max() < 10 else "tab20"]
        for c in np.unique(labels):
            sel = labels == c
            name = names[c] if c < len(names) else str(c)
            ax.scatter(coords[sel, 0], coords[sel, 1], s=6, alpha=0.7, color=cmap(int(c) % cmap.N),
                       label=name)
        ax.legend(markerscale=3, fontsize=8, loc="best")
    x, y = _axis_names(pca)
    ax.set(xlabel=x, ylabel=y, title=title)
    fig.tight_layout()
    _save(fig, path, points=len(coords), title=title)


def _plot_manifold(decoded: torch.Tensor, grid: int, q: np.ndarray, path: Path, pca: bool) -> None:
    from matplotlib.figure import Figure

    imgs = on_checkerboard(to_uint8(decoded)).permute(0, 2, 3, 1).numpy()
    h, w, c = imgs.shape[1:]
    canvas = imgs.reshape(grid, grid, h, w, c).transpose(0, 2, 1, 3, 4).reshape(grid * h, grid * w, c)
    fig = Figure(figsize=(8, 8))
    ax = fig.subplots()
    ax.imshow(canvas[:, :, 0] if c == 1 else canvas, cmap="gray" if c == 1 else None)
    ticks = np.arange(grid) * w + w / 2
    ax.set_xticks(ticks, [f"{v:.1f}" for v in q], fontsize=7)
    ax.set_yticks(np.arange(grid) * h + h / 2, [f"{v:.1f}" for v in q[::-1]], fontsize=7)
    x, y = _axis_names(pca)
    ax.set(xlabel=x, ylabel=y, title="Decoded latent grid")
    fig.tight_layout()
    _save(fig, path)
