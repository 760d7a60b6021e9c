"""Latent directions against reference decompositions: PCA against the SVD, GANSpace on a known
linear first layer."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from latentstudio.explore.directions import _pca, ganspace_directions


class TestPCA:
    @pytest.mark.parametrize("shape", [(400, 40), (40, 400), (900, 800)])
    def test_matches_svd_on_separated_components(self, shape):
        """Exact (both Gram sides) and randomized paths give the SVD's axes and variances."""
        g = torch.Generator().manual_seed(0)
        n, f = shape
        spectrum = torch.cat([torch.tensor([12.0, 9, 7, 5, 4]), torch.full((f - 5,), 0.3)])
        x = torch.randn(n, f, generator=g) * spectrum + 3.0
        axes, coords, explained = _pca(x, 4)
        xc = x.double() - x.double().mean(0)
        _, s, vh = torch.linalg.svd(xc, full_matrices=False)
        cos = (axes * vh[:4]).sum(1).abs()
        assert torch.all(cos > 0.999), cos
        signs = torch.sign((axes * vh[:4]).sum(1))
        assert torch.allclose(coords * signs, xc @ vh[:4].T, rtol=1e-3, atol=1e-3 * float(s[0]))
        assert np.allclose(explained, ((s ** 2) / (s ** 2).sum())[:4].numpy(), rtol=1e-3)


class _Linear(nn.Module):
    """A 'generator' whose first layer is a known linear map z -> W z."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.first = nn.Linear(w.shape[1], w.shape[0], bias=True)
        self.first.weight.data.copy_(w)
        self.rest = nn.Tanh()

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.rest(self.first(z))


def test_ganspace_finds_the_top_right_singular_vectors_of_a_linear_first_layer():
    """For features y = Wz with z ~ N(0, I), PCA + regression gives W's top right singular vectors."""
    g = torch.Generator().manual_seed(1)
    d = 12
    q_out, _ = torch.linalg.qr(torch.randn(40, 40, generator=g))
    q_in, _ = torch.linalg.qr(torch.randn(d, d, generator=g))
    s = torch.tensor([8.0, 6, 4.5, 3, 2] + [0.5] * (d - 5))
    w = q_out[:, :d] @ torch.diag(s) @ q_in.T
    dirs = ganspace_directions(_Linear(w), d, None, torch.device("cpu"), k=4)
    assert torch.allclose(dirs.vectors.norm(dim=1), torch.ones(4), atol=1e-5)
    cos = (dirs.vectors * q_in[:, :4].T).sum(1).abs()
    assert torch.all(cos > 0.98), cos
    assert torch.allclose(dirs.scales, torch.ones(4), atol=0.1)  # z's std along a unit direction
    assert dirs.explained == sorted(dirs.explained, reverse=True)
