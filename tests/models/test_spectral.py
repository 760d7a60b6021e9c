"""Spectral norm without writes in the forward: the same numbers as torch's, one power iteration
per training step, and a compiled FastGAN discriminator that trains where torch's failed."""

import pytest
import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm as torch_spectral_norm

from latentstudio.models import ModelConfig, get_family
from latentstudio.models.spectral import SpectralNorm, power_iteration, spectral_norm
from latentstudio.train.config import TrainConfig, model_config_for, resolve_config
from latentstudio.train.steps import step_class

LAYERS = {
    "conv": (lambda: nn.Conv2d(3, 8, 3), (2, 3, 9, 9)),
    "transposed": (lambda: nn.ConvTranspose2d(16, 8, 4), (2, 16, 5, 5)),  # normalised over dim 1
    "linear": (lambda: nn.Linear(10, 5), (2, 10)),
}


@pytest.mark.parametrize("kind", LAYERS)
def test_same_numbers_as_torchs_spectral_norm(kind: str) -> None:
    make, shape = LAYERS[kind]
    torch.manual_seed(0)
    theirs = torch_spectral_norm(make())
    torch.manual_seed(0)
    ours = spectral_norm(make())
    x = torch.randn(shape)
    # torch's registration runs one iteration more than the 15 at construction, and its forward
    # in training mode one more before each call; ours iterate only in power_iteration.
    power_iteration(ours)
    for _ in range(2):
        power_iteration(ours)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    theirs.eval(), ours.eval()
    torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-6)
    ours.load_state_dict(theirs.state_dict())  # strict: a checkpoint of either loads into the other
    theirs.load_state_dict(ours.state_dict())


def test_forward_never_writes_its_vectors() -> None:
    layer = spectral_norm(nn.Conv2d(3, 4, 3)).train()
    sn = layer.parametrizations.weight[0]
    versions = sn._u._version, sn._v._version
    u = sn._u.clone()
    layer(torch.randn(1, 3, 5, 5)).sum().backward()
    assert (sn._u._version, sn._v._version) == versions
    assert torch.equal(sn._u, u)


def test_a_training_step_iterates_every_spectral_norm_once(monkeypatch) -> None:
    cfg = resolve_config(TrainConfig(model="fastgan", data="shapes:8", resolution=64, width=4,
                                     latent_dim=8, batch_size=2, device="cpu"),
                         get_family("fastgan"))
    family = get_family("fastgan")
    models = nn.ModuleDict(family.build(model_config_for(cfg, family, 3, 0)))
    norms = [m for m in models.modules() if isinstance(m, SpectralNorm)]
    assert len(norms) > 20  # every conv of both networks
    calls: dict[int, int] = {}
    iterate = SpectralNorm.iterate
    monkeypatch.setattr(SpectralNorm, "iterate", lambda self, mat, n=1: (
        calls.__setitem__(id(self), calls.get(id(self), 0) + n), iterate(self, mat, n))[1])
    step = step_class(family.hooks)(models, cfg, torch.device("cpu"), total_steps=2)
    for i in range(2):
        step(torch.rand(2, 3, 64, 64) * 2 - 1, None, i)
    assert sorted(calls.get(id(m), 0) for m in norms) == [2] * len(norms)


@pytest.mark.slow
def test_compiled_fastgan_discriminator_trains_with_four_channel_maps() -> None:
    """torch 2.13 compiling torch's spectral norm failed here in the first backward."""
    torch.manual_seed(0)
    nets = get_family("fastgan").build(ModelConfig(resolution=64, channels=3, latent_dim=8, width=4))
    d = torch.compile(nets["discriminator"], dynamic=False)
    real, fake = torch.randn(2, 3, 64, 64), torch.randn(2, 3, 64, 64)
    logits, recons, targets = d(real, reconstruct=True)
    loss = logits.mean() - d(fake).mean() + sum((r - t).abs().mean() for r, t in zip(recons, targets, strict=True))
    loss.backward()
    assert all(p.grad is not None for p in nets["discriminator"].parameters() if p.requires_grad)
