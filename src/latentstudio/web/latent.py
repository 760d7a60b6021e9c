"""The model side of the gallery: loaded runs cached per folder, latent directions, rendering.

Sliders move a seed's latent along the run's first principal directions:
- GANs: GANSpace (Härkönen et al. 2020): sample many z, take the PCA of the generator's first
  layer outputs, and regress z on the principal coordinates to get the matching latent
  directions. (For a linear first layer y = Wz these are W's top right singular vectors.)
- VAEs: PCA of the encoder means of the training images (the directions the data actually
  spreads along); falls back to GANSpace on the decoder when the data cannot be read.
Concept vectors saved in RUN/vectors/NAME.pt by `latentstudio vector` add more sliders.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from latentstudio.errors import UserError
from latentstudio.explore.latents import slerp
from latentstudio.explore.vectors import (
    ConceptVector,
    apply_vectors,
    load_vector,
    shifted_embedding,
)
from latentstudio.images import to_pil
from latentstudio.train.loop import PREVIEW_SEED_OFFSET
from latentstudio.train.run import Run, load_run

NUM_DIRECTIONS = 6
DIRECTION_SAMPLES = 1024  # z samples for GANSpace (at least 4 per latent dimension)
VAE_SAMPLES = 2000  # training images encoded for the VAE's PCA
MAX_SEED = 2**63 - 1
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
def vae_directions(run: Run, k: int = NUM_DIRECTIONS, n: int = VAE_SAMPLES) -> Directions:
    """Principal axes of the encoder means of (up to n) training images."""
    data = run.dataset()
    images = data.images[:n]
    labels = data.labels[:n] if data.labels is not None and run.model_config.num_classes else None
    enc = run.models["encoder"]
    mus = []
    for i in range(0, len(images), 256):
        x = images[i:i + 256].float().div(127.5).sub(1).to(run.device)
        y = labels[i:i + 256].to(run.device) if labels is not None else None
        mus.append(enc(x, y)[0].float().cpu())
    mu = torch.cat(mus)
    axes, coords, explained = _pca(mu, k)
    return Directions(axes.float(), coords.std(0).float(), explained,
                      f"PCA of the encoder means of {len(mu)} training images")


def preview_latent(config: dict[str, Any], z_index: int) -> torch.Tensor:
    """The fixed latent (1, D) behind preview grid cells using latent `z_index` (as Trainer makes them)."""
    g = torch.Generator().manual_seed(int(config.get("seed", 0)) + PREVIEW_SEED_OFFSET)
    z = torch.randn(int(config.get("preview_count", 16)), int(config["latent_dim"]), generator=g)
    return z[z_index:z_index + 1]


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: list[Image.Image], fps: float) -> bytes:
    buf = io.BytesIO()
    frames = [f.convert("RGB") for f in frames]
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:],
                   duration=int(1000 / fps), loop=0)
    return buf.getvalue()


@dataclass
class Point:
    """What one picture is drawn from: latent (1, D), class labels, label-embedding shift."""

    z: torch.Tensor
    labels: torch.Tensor | None = None
    shift: torch.Tensor | None = None  # from class-to-class vectors of conditional models


@dataclass
class Explorer:
    """One loaded run with its latent directions and concept vectors, ready to render."""

    run: Run
    directions: Directions
    vectors: dict[str, ConceptVector] = field(default_factory=dict)
    vector_problems: list[str] = field(default_factory=list)
    _vector_signature: tuple = ()

    @property
    def step(self) -> int:
        return int(self.run.progress.get("step", 0))

    def info(self) -> dict[str, Any]:
        d = self.directions
        return {
            "latent_dim": self.run.config.latent_dim,
            "step": self.step,
            "classes": self.run.class_names if self.run.model_config.num_classes else [],
            "method": d.method,
            "directions": [{"index": i, "explained": round(e, 4)} for i, e in enumerate(d.explained)],
            "vectors": sorted(self.vectors),
            "vector_problems": self.vector_problems,
        }

    def refresh_vectors(self) -> None:
        """Load RUN/vectors/*.pt (written by `latentstudio vector`) again when they changed."""
        folder = self.run.path / "vectors"
        try:
            entries = sorted((e.name, e.stat().st_mtime_ns) for e in os.scandir(folder)
                             if e.name.endswith(".pt") and not e.name.startswith("."))
        except OSError:
            entries = []
        signature = tuple(entries)
        if signature == self._vector_signature:
            return
        vectors, problems = {}, []
        for name, _ in entries:
            try:
                vec = load_vector(folder / name, self.run)
                if not torch.isfinite(vec.vector).all():
                    raise UserError(f"{name} holds non-finite numbers")
                vectors[name[:-3]] = vec
            except UserError as e:  # a bad vector file is reported beside the sliders, not fatal
                problems.append(str(e).replace(str(folder) + os.sep, "vectors/"))
        self.vectors, self.vector_problems, self._vector_signature = vectors, problems, signature

    def point(self, seed: int, label: int | None = None, directions: Sequence[float] = (),
              vectors: dict[str, float] | None = None) -> Point:
        """A seed's latent moved along principal directions and concept vectors."""
        if not 0 <= seed <= MAX_SEED:
            raise UserError(f"seed must be between 0 and {MAX_SEED}")
        z = self.run.latents(1, seed)[0].clone()
        d = self.directions
        if len(directions) > len(d.vectors):
            raise UserError(f"this run has {len(d.vectors)} latent directions")
        for i, a in enumerate(directions):
            z += float(a) * d.scales[i] * d.vectors[i]
        chosen = []
        for name, strength in (vectors or {}).items():
            if name not in self.vectors:
                raise UserError(f"no concept vector {name!r} in this run")
            chosen.append((self.vectors[name], float(strength)))
        shifts = [b * v.embedding for v, b in chosen if v.embedding is not None and b]
        return Point(apply_vectors(z[None], chosen), self.labels(label),
                     torch.stack(shifts).sum(0) if shifts else None)

    def labels(self, label: int | None) -> torch.Tensor | None:
        k = self.run.model_config.num_classes
        if not k:
            return None
        label = 0 if label is None else int(label)
        if not 0 <= label < k:
            raise UserError(f"class {label} is out of range 0..{k - 1}")
        return torch.tensor([label])

    def render(self, p: Point) -> Image.Image:
        with shifted_embedding(self.run.generator, p.shift):
            return to_pil(self.run.generate(p.z, p.labels)[0])

    def key(self, p: Point) -> str:
        """Names a picture on this checkpoint: equal keys render the same picture."""
        h = hashlib.sha1(np.round(p.z.double().numpy(), 5).tobytes())
        h.update(str(None if p.labels is None else int(p.labels[0])).encode())
        if p.shift is not None:
            h.update(np.round(p.shift.double().numpy(), 5).tobytes())
        return f"z:{h.hexdigest()[:16]}:s{self.step}"

    def interpolate(self, a: Point, b: Point, frames: int) -> list[Image.Image]:
        """Frames along the great circle from a to b (classes switch half way)."""
        ts = torch.linspace(0, 1, frames)
        z = slerp(a.z[0], b.z[0], ts)
        labels = None
        if a.labels is not None and b.labels is not None:
            labels = torch.cat([a.labels if t < 0.5 else b.labels for t in ts])
        return [to_pil(img) for img in self.run.generate(z, labels)]


def _signature(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
        return st.st_mtime_ns, st.st_size
    except OSError:
        return None


def load_explorer(run_dir: Path, device: str = "cpu") -> Explorer:
    """Load a run's last checkpoint and compute its latent directions."""
    run = load_run(run_dir, device=device)
    latent_dim = run.config.latent_dim
    labels = run.labels_for(max(DIRECTION_SAMPLES, 4 * latent_dim)) if run.model_config.num_classes \
        else None
    directions = None
    if run.family.kind == "vae":
        try:
            directions = vae_directions(run)
        except UserError:
            directions = None  # data gone or moved: the decoder alone still gives directions
    if directions is None:
        directions = ganspace_directions(run.generator, latent_dim, labels, run.device)
    explorer = Explorer(run, directions)
    explorer.refresh_vectors()
    return explorer


class ModelCache:
    """Loaded runs by folder, reloaded when checkpoints/last.pt changes; least recently used go."""

    def __init__(self, device: str = "cpu", max_models: int = 4) -> None:
        self.device = device
        self.max_models = max_models
        self._items: OrderedDict[Path, tuple[Any, Explorer | UserError]] = OrderedDict()
        self._lock = threading.Lock()
        self._loading: dict[Path, threading.Lock] = {}

    def get(self, run_dir: Path) -> Explorer:
        """The run's Explorer, or a UserError saying why it cannot be loaded."""
        key = run_dir.resolve()
        sig = _signature(key / "checkpoints" / "last.pt")
        with self._lock:
            load_lock = self._loading.setdefault(key, threading.Lock())
        with load_lock:  # one load per run at a time; others wait and reuse it
            with self._lock:
                cached = self._items.get(key)
                if cached is not None and cached[0] == sig:
                    self._items.move_to_end(key)
                    result = cached[1]
                else:
                    result = None
            if result is None:
                try:
                    result = load_explorer(key, self.device)
                except UserError as e:
                    result = e
                except Exception as e:  # noqa: BLE001 - a damaged run must not break the server
                    result = UserError(f"cannot load this run's model ({type(e).__name__}: {e})")
                with self._lock:
                    self._items[key] = (sig, result)
                    self._items.move_to_end(key)
                    while len(self._items) > self.max_models:
                        self._items.popitem(last=False)
        if isinstance(result, UserError):
            raise result
        result.refresh_vectors()
        return result
