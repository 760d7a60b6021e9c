"""Concept vectors: directions in latent space that add an idea ("more square", "darker").

A vector is the difference of two means (White 2016, "Sampling Generative Networks"):
- from examples the artist picked: mean(positive latents) - mean(negative latents);
- from two classes of the run's labelled data (unconditional models): mean latent of class B
  minus that of class A, the latents coming from the encoder (VAEs) or from projecting the
  images (GANs);
- from two classes of a conditional model (cGAN): the class is an input beside z, so z holds no
  class direction; the vector is the difference of the generator's label embeddings,
  embed(B) - embed(A), applied by shifting the embedding the generator reads. With class A,
  strength 1 then draws class B exactly, 0.5 a blend, 2 "more B than B". This needs a generator
  that reads its label through an nn.Embedding attribute named `embed`, as DCGAN's does.
Strength 1 moves an average A to an average B; `sweep` shows -2...+2.

Saved as a torch file {"vector": (D,), "embedding": (E,) or None, "label": int or None,
"run": str, "description": str}.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from latentstudio import atomic
from latentstudio.errors import UserError
from latentstudio.explore.latents import latent_dim_of, resolve_keys
from latentstudio.images import from_uint8
from latentstudio.runs import Run

SWEEP = (-2.0, -1.0, 0.0, 1.0, 2.0)


@dataclass
class ConceptVector:
    """A direction (D,) in a run's latent space; `label` is the class it was measured under."""

    vector: torch.Tensor
    label: int | None = None
    run: str = ""
    description: str = ""
    embedding: torch.Tensor | None = None  # shift of a conditional generator's label embedding

    def save(self, path: str | os.PathLike) -> Path:
        emb = None if self.embedding is None else self.embedding.float().cpu()
        try:
            return atomic.save_torch(path, {"vector": self.vector.float().cpu(), "embedding": emb,
                                            "label": self.label, "run": self.run,
                                            "description": self.description})
        except OSError as e:
            raise UserError(f"cannot write {path}: {e.strerror or e}") from None


def label_embedding(run: Run) -> nn.Embedding | None:
    """The conditional generator's label embedding, when it has one named `embed`."""
    emb = getattr(run.image_network, "embed", None)
    return emb if run.model_config.num_classes and isinstance(emb, nn.Embedding) else None


def load_vector(path: str | os.PathLike, run: Run | None = None) -> ConceptVector:
    """A saved concept vector, checked against the run's latent (and label-embedding) size."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"vector file {path} does not exist")
    try:
        d = torch.load(path, map_location="cpu", weights_only=True)
        vec = d["vector"].float().reshape(-1)
        emb = d.get("embedding")
        emb = None if emb is None else emb.float().reshape(-1)
    except Exception:
        raise UserError(f"{path} is not a latentstudio concept vector (make one with "
                        "`latentstudio vector`)") from None
    if run is not None:
        dim = latent_dim_of(run)
        if vec.numel() != dim:
            raise UserError(f"{path} is a {vec.numel()}-d vector, but this run's latents are {dim}-d")
        table = label_embedding(run)
        if emb is not None and (table is None or table.embedding_dim != emb.numel()):
            raise UserError(f"{path} moves between the classes of a conditional model; it does not "
                            f"fit {run.path} ({run.config.model})")
    return ConceptVector(vec, d.get("label"), str(d.get("run", "")), str(d.get("description", "")),
                         emb)


def parse_add(text: str) -> tuple[Path, float]:
    """'vec.pt:1.5' -> (vec.pt, 1.5); 'vec.pt' -> strength 1."""
    path, sep, strength = text.rpartition(":")
    if not sep or not path or "/" in strength or "\\" in strength:
        return Path(text), 1.0
    try:
        return Path(path), float(strength)
    except ValueError:
        raise UserError(f"--add {text!r}: expected FILE.pt or FILE.pt:STRENGTH, like vec.pt:1.5") from None


def apply_vectors(z: torch.Tensor, vectors: list[tuple[ConceptVector, float]]) -> torch.Tensor:
    """z + sum of strength * vector (the latent part; see `generate` for the embedding part)."""
    for vec, strength in vectors:
        z = z + strength * vec.vector.to(z)
    return z


@contextmanager
def shifted_embedding(generator: nn.Module, shift: torch.Tensor | None) -> Iterator[None]:
    """While active, the generator's label embedding returns embed(y) + shift."""
    if shift is None:
        yield
        return
    handle = generator.embed.register_forward_hook(lambda m, i, out: out + shift.to(out))
    try:
        yield
    finally:
        handle.remove()


def generate(run: Run, z: torch.Tensor, labels: torch.Tensor | None,
             vectors: Sequence[tuple[ConceptVector, float]] = ()) -> torch.Tensor:
    """Images in [-1, 1] for latents z moved along concept vectors."""
    shift = None
    for vec, strength in vectors:
        if vec.embedding is not None:
            shift = strength * vec.embedding if shift is None else shift + strength * vec.embedding
    with shifted_embedding(run.image_network, shift):
        return run.generate(apply_vectors(z, vectors), labels)


def vector_from_examples(run: Run, positive: list[str], negative: list[str],
                         class_: int | str | None = None) -> ConceptVector:
    """mean(positive) - mean(negative); examples are seeds, latent files or images to project."""
    if not positive or not negative:
        raise UserError("give at least one --positive and one --negative example (seeds, .pt latents or images)")
    pos = resolve_keys(run, positive, class_)
    neg = resolve_keys(run, negative, class_)
    vec = torch.stack([k.z for k in pos]).mean(0) - torch.stack([k.z for k in neg]).mean(0)
    return ConceptVector(vec, pos[0].label, str(run.path),
                         f"positive {','.join(positive)} minus negative {','.join(negative)}")


def _class_index(run: Run, class_: int | str) -> int:
    if run.model_config.num_classes:
        return int(run.labels_for(1, class_)[0])
    names = run.class_names
    if isinstance(class_, str) and not class_.isdigit():
        if class_ not in names:
            raise UserError(f"unknown class {class_!r}; the run's data has: {', '.join(names) or 'no classes'}")
        return names.index(class_)
    return int(class_)


def vector_from_classes(run: Run, from_class: int | str, to_class: int | str, n: int = 64,
                        project_steps: int = 150, seed: int = 0) -> ConceptVector:
    """mean latent of class `to_class` minus that of `from_class`, from up to n labelled images each."""
    dim = latent_dim_of(run)
    a, b = _class_index(run, from_class), _class_index(run, to_class)
    if a == b:
        raise UserError("--from-class and --to-class are the same class")
    names = run.class_names
    name = [names[c] if c < len(names) else str(c) for c in (a, b)]
    description = f"class {name[0]} -> class {name[1]}"
    if run.model_config.num_classes:
        table = label_embedding(run)
        if table is None:
            raise UserError(f"{run.config.model} takes its class in a way `vector` cannot move "
                            "along; use --positive/--negative examples with --class instead")
        shift = (table.weight[b] - table.weight[a]).detach().float().cpu()
        return ConceptVector(torch.zeros(dim), a, str(run.path), description, shift)
    data = run.dataset()
    if data.labels is None:
        raise UserError(f"the run's data {run.config.data!r} has no labels; use --positive/--negative "
                        "examples instead")
    if not (0 <= a < data.num_classes and 0 <= b < data.num_classes):
        raise UserError(f"class index out of range 0..{data.num_classes - 1}")
    g = torch.Generator().manual_seed(seed)
    means = []
    for c in (a, b):
        idx = torch.nonzero(data.labels == c).flatten()
        if len(idx) == 0:
            raise UserError(f"the run's data has no images of class {c}")
        idx = idx[torch.randperm(len(idx), generator=g)[:n]]
        images = from_uint8(data.images[idx])
        means.append(_latents_of(run, images, project_steps, seed).mean(0))
    return ConceptVector(means[1] - means[0], None, str(run.path), description)


def _latents_of(run: Run, images: torch.Tensor, steps: int, seed: int) -> torch.Tensor:
    """Latents (N, D) for images in [-1, 1]: encoder means (VAE) or projections (GAN)."""
    if run.can_encode:
        return run.encode(images)
    from latentstudio.explore.project import project_batch

    results = project_batch(run, images, None, steps=steps, restarts=1, seed=seed)
    return torch.stack([r.z for r in results])


def sweep(run: Run, vec: ConceptVector, n: int = 4, seed: int = 0,
          strengths: tuple[float, ...] = SWEEP, class_: int | str | None = None) -> torch.Tensor:
    """Images (n * len(strengths), C, H, W): one row per seeded latent, one column per strength.

    A conditional model draws every row in `class_`, else the class the vector starts from.
    """
    z = run.latents(n, seed)
    labels = None
    if run.model_config.num_classes:
        chosen = class_ if class_ is not None else (vec.label if vec.label is not None else 0)
        labels = run.labels_for(n, chosen)
    elif class_ is not None:
        run.labels_for(1, class_)  # raises "not conditional"
    columns = [generate(run, z, labels, [(vec, s)]) for s in strengths]
    return torch.stack(columns, dim=1).flatten(0, 1)
