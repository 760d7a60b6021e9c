"""The model side of the gallery: loaded runs cached per folder, latent directions, rendering.

Sliders move a seed's latent along the run's first principal directions (explore/directions.py):
GANSpace for GANs; for VAEs the PCA of the encoder means of the training images, falling back to
GANSpace on the decoder when the data cannot be read.
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

from latentstudio.errors import UserError
from latentstudio.explore.directions import (
    DIRECTION_SAMPLES,
    Directions,
    encoder_directions,
    ganspace_directions,
)
from latentstudio.explore.latents import slerp
from latentstudio.explore.vectors import (
    ConceptVector,
    apply_vectors,
    load_vector,
    shifted_embedding,
)
from latentstudio.images import encode_gif, to_pil
from latentstudio.models import get_family
from latentstudio.runs import Run, load_run, preview_latents

MAX_SEED = 2**63 - 1


def preview_latent(meta: dict[str, Any], z_index: int) -> torch.Tensor:
    """The fixed latent (1, D) behind preview grid cells using latent `z_index` (as Trainer makes them)."""
    config = meta["config"]
    z = preview_latents(get_family(config["model"]).hooks, int(config.get("seed", 0)),
                        int(config.get("preview_count", 16)), int(config["latent_dim"]))
    return z[z_index:z_index + 1]


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def gif_bytes(frames: list[Image.Image], fps: float) -> bytes:
    """The frames as an animated GIF (alpha kept as GIF's on/off transparency)."""
    return encode_gif(frames, fps)


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
        with shifted_embedding(self.run.image_network, p.shift):
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
    if run.can_encode:
        try:
            directions = encoder_directions(run)
        except UserError:
            directions = None  # data gone or moved: the decoder alone still gives directions
    if directions is None:
        directions = ganspace_directions(run.image_network, latent_dim, labels, run.device)
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
