"""Projection: a generated image is found again, better than by chance; files and errors."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.explore.latents import load_latent
from latentstudio.explore.project import ProjectSettings, load_target, project, project_file
from latentstudio.images import save_png, to_pil
from latentstudio.runs import load_run


def mse(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return (a - b).pow(2).flatten(1).mean(1)


def best_of_random(run, target: torch.Tensor, n: int = 64, labels=None) -> float:
    images = run.generate(run.latents(n, seed=12345), labels)
    return mse(images, target[None]).min().item()


def test_gan_projection_beats_the_best_of_64_random_samples(dcgan_run: Path) -> None:
    run = load_run(dcgan_run)
    target = run.generate(run.latents(1, seed=77))[0]
    result = project(run, target, steps=150, restarts=4)
    baseline = best_of_random(run, target)
    assert baseline > 1e-4, "the generator barely depends on z; this test would prove nothing"
    print(f"\nprojection MSE {result.mse:.3g} vs best of 64 random {baseline:.3g}")
    assert result.mse < 0.5 * baseline
    assert result.mse == pytest.approx(mse(result.image[None], target[None]).item(), rel=1e-4)
    assert torch.allclose(run.generate(result.z[None])[0], result.image)


def test_conditional_projection_searches_the_classes(cgan_run: Path) -> None:
    run = load_run(cgan_run)
    target = run.generate(run.latents(1, seed=5), torch.tensor([3]))[0]
    result = project(run, target, steps=100, restarts=2)
    baseline = best_of_random(run, target, labels=run.labels_for(64, 3))
    assert baseline > 1e-4
    assert result.label is not None
    assert result.mse < baseline


def test_vae_refinement_improves_on_the_encoder(vae_run: Path) -> None:
    run = load_run(vae_run)
    data = run.dataset()
    target = data.images[0].float() / 127.5 - 1
    with torch.no_grad():
        mu, _ = run.models["encoder"](target[None], None)
    encoder_only = mse(run.generate(mu), target[None]).item()
    result = project(run, target, steps=100)
    assert result.mse < encoder_only
    assert project(run, target, steps=0).mse == pytest.approx(encoder_only, rel=1e-4)


def test_project_file_writes_latent_and_side_by_side(dcgan_run: Path, tmp_path: Path) -> None:
    run = load_run(dcgan_run)
    save_png(to_pil(run.generate(run.latents(1, seed=3))[0]).resize((64, 64)), tmp_path / "t.png")
    latent, side, result = project_file(dcgan_run, tmp_path / "t.png", tmp_path / "out" / "t.pt",
                                        settings=ProjectSettings(steps=30, restarts=2))
    frame = load_latent(latent, 16)
    assert torch.equal(frame.z, result.z) and frame.label is None
    with Image.open(side) as im:
        assert im.size == (2 * 16 + 3 * 2, 16 + 2 * 2)  # target | result, 2 px padding
    assert load_target(run, tmp_path / "t.png").shape == (3, 16, 16)


def test_project_errors(dcgan_run: Path, tmp_path: Path) -> None:
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(UserError, match="cannot read image"):
        project_file(dcgan_run, tmp_path / "bad.png", tmp_path / "x.pt")
    with pytest.raises(UserError, match="does not exist"):
        project_file(dcgan_run, tmp_path / "missing.png", tmp_path / "x.pt")
    with pytest.raises(UserError, match=r"expected a \.pt"):
        project_file(dcgan_run, tmp_path / "bad.png", tmp_path / "x.png")
