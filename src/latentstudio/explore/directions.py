"""Principal latent directions of a trained run, for sliders and walks.

- GANSpace (Härkönen et al. 2020): sample many z, take the PCA of the image network's first layer
  outputs, and regress z on the principal coordinates to get the matching latent directions.
  (For a linear first layer y = Wz these are W's top right singular vectors.)
- Models with an encoder (VAEs): PCA of the encoder means of the training images, the directions
  the data actually spreads along.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from latentstudio.images import from_uint8
from latentstudio.runs import Run

NUM_DIRECTIONS = 6
DIRECTION_SAMPLES = 1024  # z samples for GANSpace (at least 4 per latent dimension)
ENCODED_SAMPLES = 2000  # training images encoded for the encoder's PCA
EXACT_PCA_LIMIT = 768  # above this many samples and features, PCA is randomized


@dataclass
class Directions:
    """Unit latent directions (k, D), the latent std along each, and the variance each explains."""

    vectors: torch.Tensor
    scales: torch.Tensor
    explained: list[float]
    method: str


def _first_layer(net: nn.Module) -> nn.Module | None:
    for m in net.modules():
        if isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            return m
    return None


class _Captured(Exception):
    """Raised by a forward hook to stop the network once the first layer has run."""

    def __init__(self, output: torch.Tensor) -> None:
        self.output = output


def _raise_output(module: nn.Module, inputs: Any, output: torch.Tensor) -> None:
    raise _Captured(output)


@torch.no_grad()
def _features(net: nn.Module, z: torch.Tensor, labels: torch.Tensor | None,
              device: torch.device) -> torch.Tensor:
    """The first layer's outputs for z (its images when no such layer is found), flattened."""
    layer = _first_layer(net)
    handle = layer.register_forward_hook(_raise_output) if layer is not None else None
    out = []
    try:
        for i in range(0, len(z), 256):
            y = labels[i:i + 256].to(device) if labels is not None else None
            try:
                features = net(z[i:i + 256].to(device), y)
            except _Captured as c:
                features = c.output
            out.append(features.float().flatten(1).cpu())
    finally:
        if handle is not None:
            handle.remove()
    return torch.cat(out)


def _pca(x: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor, list[float]]:
    """(top-k principal axes (k, F), coordinates (N, k), explained variance fractions).

    Small problems: exact, from the eigenvectors of X^T X. Large ones (big first layers): a
    seeded randomized SVD (Halko et al. 2011) with power iterations, which finds the top few
    components in a fraction of a second where a full eigensolve takes many seconds.
    """
    x = x.double() - x.double().mean(0)
    n, f = x.shape
    total = float((x * x).sum()) or 1.0
    if min(n, f) > EXACT_PCA_LIMIT:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            u, s, v = torch.svd_lowrank(x.float(), q=min(k + 10, n, f), niter=4)
        k = min(k, len(s))
        u, s, v = u.double(), s.double(), v.double()
        return v[:, :k].T, u[:, :k] * s[:k], [float(e) / total for e in s[:k] ** 2]
    x = x if f <= n else x.T  # decompose the smaller Gram matrix
    evals, evecs = torch.linalg.eigh(x.T @ x)
    evals, evecs = evals.flip(0).clamp_min(0), evecs.flip(1)  # descending
    k = min(k, len(evals))
    if f <= n:
        axes = evecs[:, :k].T
        coords = x @ evecs[:, :k]
    else:  # x is X^T here: evecs are the left singular vectors of X
        sv = evals[:k].sqrt().clamp_min(1e-12)
        coords = evecs[:, :k] * sv
        axes = (x @ evecs[:, :k] / sv).T
    return axes, coords, [float(e) / total for e in evals[:k]]


def ganspace_directions(net: nn.Module, latent_dim: int, labels: torch.Tensor | None,
                        device: torch.device, k: int = NUM_DIRECTIONS,
                        n: int = DIRECTION_SAMPLES) -> Directions:
    """GANSpace directions of an image-producing network net(z, labels)."""
    g = torch.Generator().manual_seed(0)
    n = max(n, 4 * latent_dim)
    z = torch.randn(n, latent_dim, generator=g)
    _, coords, explained = _pca(_features(net, z, labels, device), k)
    # Least squares z ~ coords @ B: row i of B is how z moves per unit of principal coordinate i.
    b = torch.linalg.lstsq(coords, z.double()).solution
    vectors = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    scales = (z.double() @ vectors.T).std(0)
    return Directions(vectors.float(), scales.float(), explained,
                      "GANSpace: PCA of the first layer's outputs, regressed onto z")


@torch.no_grad()
def encoder_directions(run: Run, k: int = NUM_DIRECTIONS, n: int = ENCODED_SAMPLES) -> Directions:
    """Principal axes of the encoder means of (up to n) training images."""
    data = run.dataset()
    images = data.images[:n]
    labels = data.labels[:n] if data.labels is not None and run.model_config.num_classes else None
    mu = torch.cat([run.encode(from_uint8(images[i:i + 256]),
                               labels[i:i + 256] if labels is not None else None)
                    for i in range(0, len(images), 256)])
    axes, coords, explained = _pca(mu, k)
    return Directions(axes.float(), coords.std(0).float(), explained,
                      f"PCA of the encoder means of {len(mu)} training images")
