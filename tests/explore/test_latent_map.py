"""VAE latent maps: the scatter holds every encoded image, the plane maths, the manifold grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.explore.latent_map import latent_map, plane
from latentstudio.runs import load_run


def test_latent_map_writes_a_scatter_with_every_point_and_a_manifold(vae_run: Path, tmp_path: Path) -> None:
    result = latent_map(vae_run, tmp_path / "map.png", n=300, grid=6)
    assert result.scatter == tmp_path / "map-scatter.png" and not result.pca
    assert result.coords.shape == (300, 2) and len(result.labels) == 300
    with Image.open(result.scatter) as im:
        assert im.info["Points"] == "300"
        assert im.size[0] > 300 and len(np.unique(np.asarray(im.convert("RGB")).reshape(-1, 3), axis=0)) > 4
    with Image.open(result.manifold) as im:
        assert im.size[0] >= 6 * 16
    # A 2-D latent is plotted as is: the points are the encoder's means.
    run = load_run(vae_run)
    images = run.dataset().images  # seed differs from the map's, so compare through the encoder
    with torch.no_grad():
        mu, _ = run.models["encoder"](images[:5].float() / 127.5 - 1, None)
    assert np.allclose(plane(mu.double().numpy())[2], mu.double().numpy())


def test_plane_uses_principal_components_above_two_dimensions() -> None:
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(8, 8)))[0][:, :2].T  # two orthonormal directions
    mu = 5 + rng.normal(size=(2000, 2)) * [3.0, 1.0] @ basis + rng.normal(size=(2000, 8)) * 0.05
    centre, axes, coords = plane(mu)
    assert np.allclose(centre, mu.mean(0))
    assert np.allclose(coords.std(0, ddof=1), 1.0, atol=1e-6)  # std units
    assert abs(np.linalg.norm(axes[0]) - 3.0) < 0.15 and abs(np.linalg.norm(axes[1]) - 1.0) < 0.1
    assert abs(axes[0] @ basis[0]) / np.linalg.norm(axes[0]) > 0.99


def test_latent_map_needs_an_encoder(dcgan_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="needs a VAE run"):
        latent_map(dcgan_run, tmp_path / "map")
    (tmp_path / "f").write_text("")
    with pytest.raises(UserError, match="cannot write"):
        latent_map(dcgan_run, tmp_path / "f" / "map")
