"""Latent play: GANSpace and VAE directions against reference decompositions, concept vectors,
preview-grid latents, interpolation, the model cache."""

from __future__ import annotations

import base64
import io
import json
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from latentstudio.errors import UserError
from latentstudio.images import from_uint8
from latentstudio.models import FAMILIES, Family, ModelConfig, register_family
from latentstudio.models.dcgan import build_dcgan
from latentstudio.web.latent import ModelCache, Point, load_explorer

RUN = "tiny"


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("RGB")).astype(int)


def png(data: bytes) -> np.ndarray:
    return pixels(Image.open(io.BytesIO(data)))


def _b64(data_url: str) -> bytes:
    return base64.b64decode(data_url.split(",", 1)[1])


def test_dcgan_first_direction_moves_the_first_layer_most(trained_run):
    """On the real run, PC1 changes the first layer's output far more than random directions."""
    ex = load_explorer(trained_run)
    w = ex.run.image_network.net[0].weight.detach()  # ConvTranspose2d(latent, ch, 4): y = z @ W.flatten
    m = w.reshape(w.shape[0], -1).double()
    top = torch.linalg.svdvals(m)[0]
    gain = (ex.directions.vectors.double() @ m).norm(dim=1)
    g = torch.Generator().manual_seed(0)
    r = torch.randn(200, m.shape[0], generator=g, dtype=torch.float64)
    random_gain = (r / r.norm(dim=1, keepdim=True) @ m).norm(dim=1)
    assert gain[0] > 0.9 * top
    assert gain[0] > random_gain.quantile(0.99)


@pytest.fixture(scope="module")
def extra_families():
    """Tiny VAE and conditional GAN families registered for these tests only."""

    class Encoder(nn.Module):
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            n = 4 * (cfg.resolution // 4) ** 2
            self.net = nn.Sequential(nn.Conv2d(cfg.channels, 4, 4, 4), nn.ReLU(), nn.Flatten())
            self.mu, self.logvar = nn.Linear(n, cfg.latent_dim), nn.Linear(n, cfg.latent_dim)

        def forward(self, x, labels=None):
            h = self.net(x)
            return self.mu(h), self.logvar(h)

    class Decoder(nn.Module):
        def __init__(self, cfg: ModelConfig) -> None:
            super().__init__()
            self.shape = (cfg.channels, cfg.resolution, cfg.resolution)
            self.fc = nn.Linear(cfg.latent_dim, int(np.prod(self.shape)))

        def logits(self, z, labels=None):
            return self.fc(z).view(-1, *self.shape)

        def forward(self, z, labels=None):
            return torch.tanh(self.logits(z, labels) / 2)

    vae = register_family(Family("webtest-vae", "vae", lambda cfg: {"encoder": Encoder(cfg), "decoder": Decoder(cfg)},
                                 "tiny VAE for the gallery tests", {"lr": 1e-3}))
    cgan = register_family(Family("webtest-cgan", "gan", build_dcgan, "tiny conditional DCGAN for the gallery tests",
                                  {"lr": 2e-4, "betas": (0.5, 0.999)}, conditional=True))
    yield vae, cgan
    FAMILIES.pop("webtest-vae", None)
    FAMILIES.pop("webtest-cgan", None)


# Grids every epoch: grid stars name an epoch.
WEB_RUN = dict(steps=2, resolution=16, batch_size=32, latent_dim=8, preview_count=8, seed=0,
               preview_every=1)


def test_vae_directions_are_the_principal_axes_of_encoded_means(extra_families, tiny_run):
    run_dir = tiny_run("webtest-vae", **WEB_RUN)
    ex = load_explorer(run_dir)
    assert ex.directions.method.startswith("PCA of the encoder means")
    data = ex.run.dataset()
    with torch.no_grad():
        mu = ex.run.encode(from_uint8(data.images)).double().numpy()
    cov = np.cov(mu, rowvar=False)
    evals = np.linalg.eigvalsh(cov)[::-1]
    dirs = ex.directions.vectors.double().numpy()
    assert np.allclose(dirs @ dirs.T, np.eye(len(dirs)), atol=1e-5)
    # Each direction carries its eigenvalue of the covariance; scales are the stds along them.
    assert np.allclose(np.einsum("kd,de,ke->k", dirs, cov, dirs), evals[:len(dirs)], rtol=1e-3)
    assert np.allclose(ex.directions.scales.numpy() ** 2, evals[:len(dirs)], rtol=1e-3)


def test_conditional_grid_cells_keep_their_class_and_latent(extra_families, tiny_run):
    from fastapi.testclient import TestClient

    from latentstudio.web.app import create_app

    run_dir = tiny_run("webtest-cgan", name="cgan", **WEB_RUN)
    root = run_dir.parent
    with TestClient(create_app(root)) as c:
        d = c.get("/api/runs/cgan").json()
        assert d["layout"]["per_row"] == 2 and d["layout"]["count"] == 8  # 4 classes x 2 latents
        assert c.get("/api/runs/cgan/latent").json()["classes"] == ["circle", "square", "triangle", "line"]
        last = d["grids"][-1]["epoch"]
        item = c.post("/api/runs/cgan/curated", json={"source": "grid", "epoch": last, "index": 5}).json()
        assert item["label"] == 2  # row 2: the third class, column 1: the second latent
        ex = c.app.state.gallery.models.get(run_dir)
        z = torch.tensor(json.loads((run_dir / "curated.json").read_text())["items"][0]["latent"])
        again = pixels(ex.render(Point(z[None], ex.labels(2))))
        assert np.abs(again - png((run_dir / item["file"]).read_bytes())).max() <= 2
        moved = c.post("/api/runs/cgan/render", json={"seed": 0, "label": 3}).json()
        assert moved["key"] != c.post("/api/runs/cgan/render", json={"seed": 0, "label": 0}).json()["key"]
        assert c.post("/api/runs/cgan/render", json={"seed": 0, "label": 4}).status_code == 409
        # A class-to-class vector shifts the label embedding: circle + 1 x (square - circle) = square.
        from latentstudio.explore.vectors import ConceptVector

        emb = ex.run.image_network.embed.weight.detach()
        ConceptVector(torch.zeros(8), 0, embedding=emb[1] - emb[0]).save(run_dir / "vectors" / "to-square.pt")
        shifted = c.post("/api/runs/cgan/render", json={"seed": 5, "label": 0, "vectors": {"to-square": 1}}).json()
        square = c.post("/api/runs/cgan/render", json={"seed": 5, "label": 1}).json()
        circle = c.post("/api/runs/cgan/render", json={"seed": 5, "label": 0}).json()
        assert np.abs(png(_b64(shifted["image"])) - png(_b64(square["image"]))).max() <= 1
        assert shifted["key"] != circle["key"]


def test_grid_cell_latent_reproduces_the_final_grid(client, runs_root):
    """A starred cell of the last grid carries the preview latent that drew it."""
    grids = client.get(f"/api/runs/{RUN}").json()["grids"]
    item = client.post(f"/api/runs/{RUN}/curated", json={"source": "grid", "epoch": grids[-1]["epoch"], "index": 9}).json()
    assert item["has_latent"]
    ex = client.app.state.gallery.models.get(runs_root / RUN)
    z = torch.load(runs_root / RUN / item["latent_file"], weights_only=True)["z"]
    cell = png((runs_root / RUN / item["file"]).read_bytes())
    assert np.abs(pixels(ex.render(Point(z[None]))) - cell).max() <= 2


def test_concept_vectors_become_sliders(client, runs_root):
    vectors = runs_root / RUN / "vectors"
    vectors.mkdir()
    v = torch.linspace(-1, 1, 32)
    torch.save({"vector": v, "source": "test"}, vectors / "smile.pt")
    torch.save({"vector": torch.ones(5)}, vectors / "wrong-size.pt")
    (vectors / "garbage.pt").write_bytes(b"nope")
    info = client.get(f"/api/runs/{RUN}/latent").json()
    assert info["vectors"] == ["smile"]
    assert len(info["vector_problems"]) == 2 and any("wrong-size" in p for p in info["vector_problems"])
    out = client.post(f"/api/runs/{RUN}/render", json={"seed": 4, "vectors": {"smile": 1.5}}).json()
    ex = client.app.state.gallery.models.get(runs_root / RUN)
    expected = pixels(ex.render(Point(ex.run.latents(1, 4) + 1.5 * v)))
    got = png(_b64(out["image"]))
    assert np.array_equal(got, expected)
    # A vector added while the server runs shows up without a restart.
    torch.save({"vector": -v}, vectors / "frown.pt")
    assert client.get(f"/api/runs/{RUN}/latent").json()["vectors"] == ["frown", "smile"]


def test_sliders_move_along_scaled_directions(client, runs_root):
    ex = client.app.state.gallery.models.get(runs_root / RUN)
    p = ex.point(9, None, [0.0, 2.0])
    d = ex.directions
    assert torch.allclose(p.z[0], ex.run.latents(1, 9)[0] + 2.0 * d.scales[1] * d.vectors[1], atol=1e-6)
    with pytest.raises(UserError):
        ex.point(9, None, [0.0] * 7)


def test_model_cache_reuses_and_reloads_on_a_new_checkpoint(runs_root):
    cache = ModelCache()
    run = runs_root / RUN
    first = cache.get(run)
    assert cache.get(run) is first
    ckpt = run / "checkpoints" / "last.pt"
    st = ckpt.stat()
    os.utime(ckpt, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert cache.get(run) is not first
    bad = runs_root / "bad"
    shutil.copytree(run, bad)
    (bad / "checkpoints" / "last.pt").write_bytes(b"truncated")
    for _ in range(2):
        with pytest.raises(UserError, match="not a readable latentstudio checkpoint"):
            cache.get(bad)
