"""DCGAN networks: shapes at every supported resolution, conditional inputs, spectral norm, bad
resolutions."""

import pytest
import torch

from latentstudio.errors import UserError
from latentstudio.models import ModelConfig, get_family


@pytest.mark.parametrize("resolution", [28, 32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
def test_shapes_at_each_resolution(resolution: int, channels: int) -> None:
    cfg = ModelConfig(resolution=resolution, channels=channels, latent_dim=16, width=8)
    nets = get_family("dcgan").build(cfg)
    z = torch.randn(2, 16)
    images = nets["generator"](z)
    assert images.shape == (2, channels, resolution, resolution)
    assert images.min() >= -1 and images.max() <= 1
    assert nets["discriminator"](images).shape == (2,)


def test_conditional_inputs_change_the_output() -> None:
    cfg = ModelConfig(resolution=32, channels=3, latent_dim=16, width=8, num_classes=4)
    nets = get_family("dcgan").build(cfg)
    nets["generator"].eval()
    z = torch.randn(1, 16).repeat(2, 1)
    out = nets["generator"](z, torch.tensor([0, 1]))
    assert not torch.allclose(out[0], out[1])
    assert nets["discriminator"](out, torch.tensor([0, 1])).shape == (2,)


@pytest.mark.parametrize("resolution", [30, 100, 512, 4])
def test_unsupported_resolution_is_a_user_error(resolution: int) -> None:
    with pytest.raises(UserError, match="28, 32, 64 or 128"):
        get_family("dcgan").build(ModelConfig(resolution=resolution, width=8))


def _largest_singular_value(w: torch.Tensor) -> float:
    """Of the weight as spectral norm sees it: (out, everything else)."""
    return torch.linalg.matrix_norm(w.detach().reshape(w.shape[0], -1), ord=2).item()


def _weighted_layers(net: torch.nn.Module) -> list[torch.nn.Module]:
    return [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]


@pytest.mark.parametrize("family", ["dcgan", "gan-dense"])
def test_spectral_norm_bounds_every_discriminator_layer(family: str) -> None:
    torch.manual_seed(0)
    cfg = ModelConfig(resolution=32, channels=3, latent_dim=16, width=8, spectral_norm=True)
    d = get_family(family).build(cfg)["discriminator"]
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    x = torch.randn(4, 3, 32, 32)
    for _ in range(30):  # each training-mode call runs one power iteration
        d(x)
    layers = _weighted_layers(d)
    assert layers and all(torch.nn.utils.parametrize.is_parametrized(m, "weight") for m in layers)
    for m in layers:
        assert _largest_singular_value(m.weight) == pytest.approx(1.0, abs=0.02), m
    plain = get_family(family).build(ModelConfig(resolution=32, channels=3, latent_dim=16, width=8))
    first = _weighted_layers(plain["discriminator"])[0]
    assert _largest_singular_value(first.weight) != pytest.approx(1.0, abs=0.02)
