"""Interpolation maths, truncation, latent files and keyframe parsing."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.explore.latents import (
    check_output,
    lerp,
    load_latent,
    parse_seeds,
    resolve_keys,
    save_latent,
    slerp,
    split_keys,
    truncate,
)
from latentstudio.runs import load_run


def chi_mean(d: int) -> float:
    """E|z| for z ~ N(0, I_d): sqrt(2) Gamma((d+1)/2) / Gamma(d/2)."""
    return math.sqrt(2) * math.exp(math.lgamma((d + 1) / 2) - math.lgamma(d / 2))


class TestSlerp:
    def test_endpoints_are_exact(self) -> None:
        g = torch.Generator().manual_seed(0)
        a, b = torch.randn(2, 100, generator=g)
        path = slerp(a, b, torch.tensor([0.0, 1.0]))
        assert torch.equal(path[0], a) or torch.allclose(path[0], a, atol=1e-6, rtol=0)
        assert torch.allclose(path[1], b, atol=1e-6, rtol=0)

    def test_matches_rotation_on_the_unit_circle(self) -> None:
        a, b = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])
        p = slerp(a, b, 1 / 3)[0]
        assert torch.allclose(p, torch.tensor([math.cos(math.pi / 6), math.sin(math.pi / 6)]), atol=1e-6)

    def test_keeps_gaussian_norms_near_the_chi_mean(self) -> None:
        d, pairs = 512, 200
        g = torch.Generator().manual_seed(1)
        a, b = torch.randn(pairs, d, generator=g), torch.randn(pairs, d, generator=g)
        t = torch.linspace(0, 1, 11)
        expected = chi_mean(d)
        slerp_norms = torch.stack([slerp(a[i], b[i], t).norm(dim=1) for i in range(pairs)])
        lerp_norms = torch.stack([lerp(a[i], b[i], t).norm(dim=1) for i in range(pairs)])
        # Every point of every arc stays within the spread of the endpoints' norms (chi sd ~0.71).
        assert (slerp_norms.mean(0) - expected).abs().max() < 0.15
        assert ((slerp_norms - expected).abs() < 5 * 0.71).all()
        # The straight line sags to ~sqrt(d/2) at its middle, which is why slerp is the default.
        assert lerp_norms[:, 5].mean() < 0.75 * expected

    def test_parallel_latents_fall_back_to_lerp(self) -> None:
        a = torch.ones(8)
        assert torch.allclose(slerp(a, 2 * a, 0.5)[0], 1.5 * a)


def test_truncation_pulls_towards_the_mean() -> None:
    z = torch.randn(4, 16)
    assert torch.allclose(truncate(z, 0.5), 0.5 * z)
    assert truncate(z, None) is z
    assert torch.allclose(truncate(z, 0.0, mean=torch.ones(16)), torch.ones(4, 16))
    with pytest.raises(UserError, match="truncation"):
        truncate(z, -1)


def test_latent_file_round_trip_and_size_check(tmp_path: Path) -> None:
    z = torch.randn(1, 16)
    save_latent(tmp_path / "a.pt", z, label=2, run="runs/x")
    frame = load_latent(tmp_path / "a.pt", 16)
    assert torch.equal(frame.z, z[0]) and frame.label == 2
    torch.save({"z": torch.randn(16)}, tmp_path / "plain.pt")  # the documented minimal format
    assert load_latent(tmp_path / "plain.pt", 16).label is None
    with pytest.raises(UserError, match="16-d latent, but this run's latents are 8-d"):
        load_latent(tmp_path / "a.pt", 8)
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserError, match="not a latentstudio latent file"):
        load_latent(tmp_path / "junk.pt")
    with pytest.raises(UserError, match="does not exist"):
        load_latent(tmp_path / "missing.pt")


@pytest.mark.parametrize("text", ["3,x", "3,-1", "3,,4", "1.5"])
def test_bad_seeds_are_user_errors(text: str) -> None:
    with pytest.raises(UserError, match="seed"):
        parse_seeds(text)


def test_keys_mix_seeds_latent_files_and_images(dcgan_run: Path, tmp_path: Path) -> None:
    run = load_run(dcgan_run)
    save_latent(tmp_path / "k.pt", torch.full((16,), 0.5))
    image = run.sample(1, seed=9)[0]
    from latentstudio.images import save_png, to_pil

    save_png(to_pil(image), tmp_path / "k.png")
    frames = resolve_keys(run, split_keys(f"7,{tmp_path / 'k.pt'},{tmp_path / 'k.png'}"),
                          project_steps=50)
    assert torch.equal(frames[0].z, run.latents(1, 7)[0])  # seed S = first latent of sample --seed S
    assert torch.equal(frames[1].z, torch.full((16,), 0.5))
    assert frames[2].z.shape == (16,) and frames[2].source.endswith("k.png")
    with pytest.raises(UserError, match="neither a seed"):
        resolve_keys(run, ["walk.txt"])
    with pytest.raises(UserError, match="bad seed|neither a seed"):
        resolve_keys(run, ["-3"])
    with pytest.raises(UserError, match="not conditional"):
        resolve_keys(run, ["1", "2"], class_="circle")


def test_unwritable_output_fails_before_any_work(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(UserError, match="cannot write"):
        check_output(blocker / "walk.gif", (".gif",))
    with pytest.raises(UserError, match="expected a .gif"):
        check_output(tmp_path / "walk.avi", (".gif",))
    assert check_output(tmp_path / "new" / "walk.gif", (".gif",)).parent.is_dir()
