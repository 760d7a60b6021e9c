"""Concept vectors: the maths of each kind, applying them in `sample`, and whether a class vector
really moves a classifier's judgement (cGAN on shapes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from explore_runs import EXPLORE, one_thread
from PIL import Image
from torch import nn

from latentstudio.data import load_dataset
from latentstudio.errors import UserError
from latentstudio.explore.sampling import sample_to
from latentstudio.explore.vectors import (
    ConceptVector,
    generate,
    load_vector,
    parse_add,
    sweep,
    vector_from_classes,
    vector_from_examples,
)
from latentstudio.images import make_grid
from latentstudio.runs import load_run

CIRCLE, LINE = 0, 3
SLOW_CGAN_STEPS = 3000


def train_shape_classifier(resolution: int, seed: int = 7) -> tuple[nn.Module, float]:
    """A small CNN trained on shapes the GANs never saw (another seed); returns it and its accuracy."""
    data = load_dataset("shapes:2000", resolution, 3, seed=seed, progress=False)
    x, y = data.images.float() / 127.5 - 1, data.labels
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(3, 16, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, 1, 1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 32, 3, 1, 1), nn.ReLU(), nn.AdaptiveMaxPool2d(1), nn.Flatten(), nn.Linear(32, 4),
    )
    opt = torch.optim.Adam(net.parameters(), 3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(8):
        order = torch.randperm(1600, generator=g)
        for i in range(0, 1600, 64):
            idx = order[i:i + 64]
            loss = F.cross_entropy(net(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval().requires_grad_(False)
    accuracy = (net(x[1600:]).argmax(1) == y[1600:]).float().mean().item()
    return net, accuracy


def class_probability(clf: nn.Module, images: torch.Tensor, cls: int) -> float:
    return F.softmax(clf(images), dim=1)[:, cls].mean().item()


def class_vector_effect(run_dir: Path, clf: nn.Module) -> dict[str, float]:
    """P(line) of the run's class-circle samples moved along the circle -> line vector."""
    run = load_run(run_dir)
    vec = vector_from_classes(run, "circle", "line")
    z = run.latents(256, seed=999)  # latents the vector never saw
    labels = run.labels_for(256, "circle")
    g = torch.Generator().manual_seed(1)
    random = torch.randn(vec.embedding.shape, generator=g)
    control = ConceptVector(torch.zeros_like(vec.vector),
                            embedding=random / random.norm() * vec.embedding.norm())
    with torch.no_grad():
        p = {f"{s:+g}": class_probability(clf, generate(run, z, labels, [(vec, s)]), LINE)
             for s in (-1, 0, 0.5, 1, 2)}
        p["random+1"] = class_probability(clf, generate(run, z, labels, [(control, 1)]), LINE)
    print("\nP(line) of class-circle samples along circle->line: "
          + ", ".join(f"{k}: {v:.3f}" for k, v in p.items()))
    return p


@pytest.mark.slow
def test_class_vector_moves_a_classifier_towards_b(tiny_run) -> None:
    """The acceptance test: a cGAN trained on shapes long enough to learn its classes (minutes)."""
    run_dir = tiny_run("cgan", **{**EXPLORE, "steps": SLOW_CGAN_STEPS, "data": "shapes:4000",
                                  "width": 16, "batch_size": 64})
    with one_thread():
        clf, accuracy = train_shape_classifier(16)
    print(f"\nshape classifier accuracy on held-out real shapes: {accuracy:.3f}")
    assert accuracy > 0.8
    p = class_vector_effect(run_dir, clf)
    assert p["+1"] > p["+0"] + 0.2
    assert p["+0"] < p["+0.5"] < p["+1"]
    assert p["+1"] > p["random+1"] + 0.2
    # On average over every ordered pair of classes, A -> B moves P(B) up.
    run = load_run(run_dir)
    z = run.latents(128, seed=999)
    gains = []
    with torch.no_grad():
        for a in range(4):
            for b in range(4):
                if a != b:
                    vec = vector_from_classes(run, a, b)
                    labels = run.labels_for(128, a)
                    gains.append(class_probability(clf, generate(run, z, labels, [(vec, 1)]), b)
                                 - class_probability(clf, generate(run, z, labels), b))
    print(f"mean gain in P(B) over the 12 ordered class pairs: {np.mean(gains):.3f} "
          f"(per pair: {np.round(gains, 2).tolist()})")
    assert np.mean(gains) > 0.1


def test_class_vector_moves_a_cgan_from_dark_to_bright(tmp_path: Path, tiny_run) -> None:
    """Fast variant, on data a tiny cGAN learns in seconds: a labelled folder of dark and bright
    images; the classifier is brightness itself."""
    rng = np.random.default_rng(0)
    for name, (low, high) in {"dark": (0, 90), "bright": (165, 255)}.items():
        (tmp_path / "data" / name).mkdir(parents=True)
        for i in range(64):
            pixels = rng.integers(low, high, size=(16, 16, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "data" / name / f"{i}.png")
    run_dir = tiny_run("cgan", **{**EXPLORE, "steps": 200, "data": f"folder:{tmp_path / 'data'}",
                                  "batch_size": 64, "lr": 5e-4})
    run = load_run(run_dir)
    vec = vector_from_classes(run, "dark", "bright")
    z = run.latents(64, seed=999)
    dark = run.labels_for(64, "dark")
    with torch.no_grad():
        brightness = {s: generate(run, z, dark, [(vec, s)]).mean().item() for s in (-1, 0, 0.5, 1)}
    print(f"\nmean brightness of class-dark samples along dark->bright: {brightness}")
    assert brightness[1] > brightness[0] + 0.15
    assert brightness[-1] < brightness[0] < brightness[0.5] < brightness[1]


def test_cgan_class_vector_at_strength_one_draws_class_b_exactly(cgan_run: Path) -> None:
    run = load_run(cgan_run)
    vec = vector_from_classes(run, CIRCLE, LINE)
    assert vec.label == CIRCLE and torch.count_nonzero(vec.vector) == 0
    z = run.latents(8, seed=3)
    moved = generate(run, z, run.labels_for(8, CIRCLE), [(vec, 1.0)])
    assert torch.allclose(moved, run.generate(z, run.labels_for(8, LINE)), atol=1e-5)
    # And the hook is gone afterwards.
    assert torch.equal(run.generate(z, run.labels_for(8, CIRCLE)), generate(run, z, run.labels_for(8, CIRCLE)))


def test_examples_vector_is_the_difference_of_means(dcgan_run: Path) -> None:
    run = load_run(dcgan_run)
    vec = vector_from_examples(run, ["1", "2"], ["3"])
    expected = (run.latents(1, 1)[0] + run.latents(1, 2)[0]) / 2 - run.latents(1, 3)[0]
    assert torch.allclose(vec.vector, expected)
    with pytest.raises(UserError, match="--negative"):
        vector_from_examples(run, ["1"], [])


def test_vae_class_vector_is_the_difference_of_encoded_class_means(vae_run: Path) -> None:
    run = load_run(vae_run)
    vec = vector_from_classes(run, "circle", "line", n=10_000)
    data = run.dataset()
    with torch.no_grad():
        mu, _ = run.models["encoder"](data.images.float() / 127.5 - 1, None)
    expected = mu[data.labels == LINE].mean(0) - mu[data.labels == CIRCLE].mean(0)
    assert torch.allclose(vec.vector, expected, atol=1e-5)
    assert vec.embedding is None


def test_gan_class_vector_from_projections(dcgan_run: Path) -> None:
    run = load_run(dcgan_run)
    vec = vector_from_classes(run, "circle", "line", n=4, project_steps=5)
    assert vec.vector.shape == (16,) and vec.vector.norm() > 0 and vec.embedding is None
    with pytest.raises(UserError, match="same class"):
        vector_from_classes(run, "line", "line")
    with pytest.raises(UserError, match="unknown class"):
        vector_from_classes(run, "circle", "hexagon")


def test_sample_add_and_truncation(dcgan_run: Path, tmp_path: Path) -> None:
    run = load_run(dcgan_run)
    vec = ConceptVector(torch.linspace(-1, 1, 16))
    vec.save(tmp_path / "v.pt")
    z = run.latents(4, seed=0)
    out = sample_to(dcgan_run, tmp_path / "s.png", n=4, seed=0, nrow=4, truncation=0.5,
                    add=[f"{tmp_path / 'v.pt'}:1.5", str(tmp_path / "v.pt")], size="native")
    expected = make_grid(run.generate(0.5 * z + 2.5 * vec.vector), nrow=4)
    assert np.array_equal(np.asarray(Image.open(out)), np.asarray(expected))


def test_sweep_columns_run_from_minus_two_to_plus_two(dcgan_run: Path) -> None:
    run = load_run(dcgan_run)
    vec = ConceptVector(torch.ones(16))
    grid = sweep(run, vec, n=2, seed=4).reshape(2, 5, 3, 16, 16)
    z = run.latents(2, seed=4)
    for j, s in enumerate((-2, -1, 0, 1, 2)):
        assert torch.allclose(grid[:, j], run.generate(z + s), atol=1e-6)


def test_vector_files_are_checked_against_the_run(dcgan_run: Path, cgan_run: Path, tmp_path: Path) -> None:
    cgan = load_run(cgan_run)
    vector_from_classes(cgan, CIRCLE, LINE).save(tmp_path / "c.pt")
    with pytest.raises(UserError, match="conditional model"):
        load_vector(tmp_path / "c.pt", load_run(dcgan_run))
    ConceptVector(torch.ones(8)).save(tmp_path / "small.pt")
    with pytest.raises(UserError, match="8-d vector, but this run's latents are 16-d"):
        load_vector(tmp_path / "small.pt", load_run(dcgan_run))
    assert load_vector(tmp_path / "c.pt", cgan).label == CIRCLE


@pytest.mark.parametrize(("text", "path", "strength"), [
    ("vec.pt:1.5", "vec.pt", 1.5), ("vec.pt", "vec.pt", 1.0), ("a/vec.pt:-2", "a/vec.pt", -2.0),
    ("d:x/vec.pt", "d:x/vec.pt", 1.0),
])
def test_parse_add(text: str, path: str, strength: float) -> None:
    assert parse_add(text) == (Path(path), strength)


def test_parse_add_rejects_a_bad_strength() -> None:
    with pytest.raises(UserError, match="STRENGTH"):
        parse_add("vec.pt:strong")
