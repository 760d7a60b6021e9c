"""Losses and penalties against their definitions: KL, gradient penalty, clipping, GAN losses."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from latentstudio.models import ModelConfig
from latentstudio.models.dcgan import Discriminator
from latentstudio.objectives.adversarial import discriminator_loss, generator_loss
from latentstudio.objectives.kl import kl_normal
from latentstudio.objectives.penalties import clip_weights, gradient_penalty, r1_penalty


# ----- KL
def test_kl_of_the_prior_itself_is_zero() -> None:
    mu, logvar = torch.zeros(5, 7), torch.zeros(5, 7)
    assert torch.equal(kl_normal(mu, logvar), torch.zeros(5))


def test_kl_matches_torch_distributions_on_random_inputs() -> None:
    g = torch.Generator().manual_seed(0)
    mu = torch.randn(64, 16, generator=g) * 2
    logvar = torch.randn(64, 16, generator=g) * 1.5
    expected = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).sum(1)
    torch.testing.assert_close(kl_normal(mu, logvar), expected, rtol=1e-5, atol=1e-5)
    assert (kl_normal(mu, logvar) > 0).all()


def test_kl_closed_form_one_dimension() -> None:
    # KL(N(m, s^2) || N(0, 1)) = (m^2 + s^2 - 1) / 2 - log s
    m, s = 1.5, 0.4
    out = kl_normal(torch.tensor([[m]]), torch.tensor([[math.log(s * s)]]))
    assert out.item() == pytest.approx((m * m + s * s - 1) / 2 - math.log(s), rel=1e-6)


# ----- gradient penalty
class LinearCritic(nn.Module):
    """f(x) = <w, x> + b: its gradient is w everywhere, so it is ||w||-Lipschitz."""

    def __init__(self, shape: tuple[int, ...], norm: float) -> None:
        super().__init__()
        w = torch.randn(shape, generator=torch.Generator().manual_seed(1))
        self.w = nn.Parameter(w / w.norm() * norm)
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x * self.w).flatten(1).sum(1) + self.b


@pytest.mark.parametrize("shape", [(3, 8, 8), (10,)])
def test_gradient_penalty_is_zero_for_a_1_lipschitz_linear_critic(shape: tuple[int, ...]) -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(16, *shape, generator=g), torch.randn(16, *shape, generator=g)
    gp = gradient_penalty(LinearCritic(shape, 1.0), real, fake, g)
    assert gp.item() == pytest.approx(0.0, abs=1e-10)


@pytest.mark.parametrize("norm", [0.5, 3.0])
def test_gradient_penalty_is_the_squared_gap_of_the_gradient_norm(norm: float) -> None:
    g = torch.Generator().manual_seed(0)
    real, fake = torch.randn(8, 3, 4, 4, generator=g), torch.randn(8, 3, 4, 4, generator=g)
    gp = gradient_penalty(LinearCritic((3, 4, 4), norm), real, fake, g)
    assert gp.item() == pytest.approx((norm - 1) ** 2, rel=1e-5)


def test_gradient_penalty_is_positive_for_a_conv_critic_and_trains_its_weights() -> None:
    torch.manual_seed(0)
    critic = Discriminator(ModelConfig(resolution=16, channels=3, width=8, batch_norm=False))
    real, fake = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    gp = gradient_penalty(critic, real, fake)
    assert gp.item() > 0.01
    gp.backward()  # double backward reaches the critic's weights (biases do not move the
    # input gradient of a piecewise-linear net, so only weights are checked)
    weights = [p for name, p in critic.named_parameters() if name.endswith("weight")]
    assert weights and all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_gradient_penalty_matches_a_hand_computed_interpolate() -> None:
    # critic(x) = sum(x^2) / 2 has gradient x_hat, so the penalty is mean((||x_hat|| - 1)^2).
    real, fake = torch.randn(4, 6), torch.randn(4, 6)
    gp = gradient_penalty(lambda x: (x * x).sum(1) / 2, real, fake, torch.Generator().manual_seed(3))
    alpha = torch.rand(4, 1, generator=torch.Generator().manual_seed(3))
    x_hat = alpha * real + (1 - alpha) * fake
    assert gp.item() == pytest.approx(((x_hat.norm(dim=1) - 1) ** 2).mean().item(), rel=1e-5)


@pytest.mark.parametrize("norm", [0.5, 3.0])
def test_r1_penalty_is_the_squared_gradient_norm_on_real_images(norm: float) -> None:
    real = torch.randn(5, 3, 4, 4).requires_grad_(True)
    critic = LinearCritic((3, 4, 4), norm)
    assert r1_penalty(real, critic(real)).item() == pytest.approx(norm ** 2, rel=1e-5)
    # sum(x^2) / 2 has gradient x: the penalty is the mean squared norm of the images
    assert r1_penalty(real, (real * real).flatten(1).sum(1) / 2).item() == pytest.approx(
        real.detach().flatten(1).square().sum(1).mean().item(), rel=1e-5)


def test_r1_penalty_trains_the_discriminator_weights() -> None:
    torch.manual_seed(0)
    critic = Discriminator(ModelConfig(resolution=16, width=8))
    real = torch.randn(4, 3, 16, 16).requires_grad_(True)
    r1_penalty(real, critic(real)).backward()
    assert critic.features[0].weight.grad.abs().sum() > 0


# ----- clipping
def test_clip_weights_bounds_every_parameter() -> None:
    torch.manual_seed(0)
    critic = Discriminator(ModelConfig(resolution=16, width=8))
    for p in critic.parameters():
        p.data.mul_(100)
    clip_weights(critic, 0.01)
    params = list(critic.parameters())
    assert all(p.abs().max() <= 0.01 for p in params)
    assert any((p.abs() == 0.01).any() for p in params)  # clamped, not rescaled or zeroed


# ----- adversarial losses
def test_bce_losses_match_their_definitions() -> None:
    real, fake = torch.tensor([2.0, -1.0, 0.5]), torch.tensor([-3.0, 0.2, 1.0])
    sig = torch.sigmoid
    expected_d = -(sig(real).log().mean() + (1 - sig(fake)).log().mean())
    torch.testing.assert_close(discriminator_loss("bce", real, fake), expected_d)
    # Non-saturating generator loss: -log D(G(z)).
    torch.testing.assert_close(generator_loss("bce", fake), -sig(fake).log().mean())


def test_bce_discriminator_loss_uses_smoothed_and_noisy_targets() -> None:
    real, fake = torch.tensor([2.0, -1.0]), torch.tensor([-3.0, 0.2])
    real_t, fake_t = torch.tensor([0.9, 0.0]), torch.tensor([0.0, 1.0])
    expected = (F.binary_cross_entropy_with_logits(real, real_t)
                + F.binary_cross_entropy_with_logits(fake, fake_t))
    torch.testing.assert_close(discriminator_loss("bce", real, fake, real_t, fake_t), expected)


def test_hinge_and_wasserstein_losses() -> None:
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.2])
    # hinge: mean(relu(1 - real)) + mean(relu(1 + fake)) = (0 + 0.5)/2 + (0 + 1.2)/2
    assert discriminator_loss("hinge", real, fake).item() == pytest.approx(0.85)
    assert discriminator_loss("wasserstein", real, fake).item() == pytest.approx(-1.4 - 1.25)
    assert generator_loss("wasserstein", fake).item() == pytest.approx(1.4)
    assert generator_loss("hinge", fake).item() == pytest.approx(1.4)
