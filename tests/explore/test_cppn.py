"""CPPN: the GAN convention at training size, any-size renders, tiling that changes nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from latentstudio.errors import UserError
from latentstudio.explore.render import render, render_canvas, render_random
from latentstudio.images import to_uint8
from latentstudio.models import ModelConfig, get_family
from latentstudio.models.cppn import CPPNGenerator, coordinates, random_cppn
from latentstudio.runs import load_run


def test_family_builds_a_generator_with_the_gan_convention() -> None:
    family = get_family("cppn-gan")
    assert family.kind == "gan"
    nets = family.build(ModelConfig(resolution=28, channels=1, latent_dim=8, width=16))
    z = torch.randn(5, 8)
    images = nets["generator"](z)
    assert images.shape == (5, 1, 28, 28) and images.abs().max() <= 1
    assert nets["discriminator"](images).shape == (5,)
    images.mean().backward()  # trainable end to end


def test_tiled_1024_render_equals_the_untiled_render() -> None:
    net = random_cppn(seed=3, latent_dim=8, hidden=16)
    z = torch.randn(1, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        whole = net.render(z, 1024, 1024, tile=1024)
        tiled = net.render(z, 1024, 1024, tile=300)  # ragged edge tiles too
    assert whole.shape == (1, 3, 1024, 1024)
    assert torch.allclose(whole, tiled, atol=1e-5, rtol=0)
    assert whole.std() > 0.05  # a pattern, not a flat colour
    canvas = render_canvas(net, z, 1024, 1024, tile=256)
    assert np.array_equal(canvas, to_uint8(whole)[0].permute(1, 2, 0).numpy())


def test_a_larger_render_is_the_same_picture_in_more_detail() -> None:
    net = CPPNGenerator(ModelConfig(resolution=16, channels=3, latent_dim=8, width=16)).eval()
    z = torch.randn(2, 8)
    with torch.no_grad():
        small = net(z)
        large = net.render(z, 64, 64)
    # Each 16 px pixel covers a 4x4 block of the 64 px render; their centres sample nearby points.
    pooled = torch.nn.functional.avg_pool2d(large, 4)
    assert (pooled - small).abs().mean() < 0.05


def test_coordinates_are_pixel_centres_on_the_shorter_side() -> None:
    c = coordinates(4, 2, scale=1.0).reshape(2, 4, 3)
    assert torch.allclose(c[0, :, 0], torch.tensor([-1.5, -0.5, 0.5, 1.5]))  # wider: more pattern
    assert torch.allclose(c[:, 0, 1], torch.tensor([-0.5, 0.5]))
    assert torch.allclose(c[..., 2], c[..., :2].norm(dim=-1))


def test_render_command_library_on_a_cppn_run(cppn_run: Path, tmp_path: Path) -> None:
    out = render(cppn_run, tmp_path / "big.png", width=300, height=200, seed=5, tile=128)
    with Image.open(out) as im:
        assert im.size == (300, 200)
        big = np.asarray(im)
    run = load_run(cppn_run)
    expected = to_uint8(run.image_network.render(run.latents(1, 5), 300, 200))[0].permute(1, 2, 0).numpy()
    assert np.abs(big.astype(int) - expected).max() <= 1


def test_render_needs_a_coordinate_generator(dcgan_run: Path, tmp_path: Path) -> None:
    with pytest.raises(UserError, match="cppn-gan"):
        render(dcgan_run, tmp_path / "x.png")
    with pytest.raises(UserError, match="--width"):
        render(dcgan_run, tmp_path / "x.png", width=0)


def test_random_cppn_is_seeded(tmp_path: Path) -> None:
    a = np.asarray(Image.open(render_random(tmp_path / "a.png", seed=1, width=64, height=48)))
    b = np.asarray(Image.open(render_random(tmp_path / "b.png", seed=1, width=64, height=48)))
    c = np.asarray(Image.open(render_random(tmp_path / "c.png", seed=2, width=64, height=48)))
    assert a.shape == (48, 64, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
    grey = np.asarray(Image.open(render_random(tmp_path / "g.png", seed=1, width=32, channels=1)))
    assert grey.shape == (32, 32)
