"""The classic dense (MLP) GAN of Goodfellow et al. 2014, in its common minimal form.

Generator: z -> 4w -> 8w -> pixels (tanh), LeakyReLU between; discriminator: pixels -> 8w -> 4w
-> one logit, LeakyReLU(0.2) between (w = --width; 256/512 hidden units at the default 64).
No convolutions, so it works at any resolution, and shows why DCGAN was a step forward.
"""

from __future__ import annotations

import torch
from torch import nn

from latentstudio.models import Family, ModelConfig, init_weights, register_family
from latentstudio.models.spectral import spectral_norm as _sn


class DenseGenerator(nn.Module):
    """z (N, latent_dim) -> images (N, C, R, R) in [-1, 1]; labels are ignored."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.shape = (cfg.channels, cfg.resolution, cfg.resolution)
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, 4 * cfg.width), nn.LeakyReLU(0.2, True),
            nn.Linear(4 * cfg.width, 8 * cfg.width), nn.LeakyReLU(0.2, True),
            nn.Linear(8 * cfg.width, cfg.channels * cfg.resolution ** 2), nn.Tanh(),
        )
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


class DenseDiscriminator(nn.Module):
    """images (N, C, R, R) -> one logit per image (N,); labels are ignored."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        layers = [
            nn.Linear(cfg.channels * cfg.resolution ** 2, 8 * cfg.width),
            nn.Linear(8 * cfg.width, 4 * cfg.width),
            nn.Linear(4 * cfg.width, 1),
        ]
        for layer in layers:
            init_weights(layer)  # before spectral norm, which hides .weight behind a parametrisation
        if cfg.spectral_norm:
            layers = [_sn(layer) for layer in layers]
        self.net = nn.Sequential(nn.Flatten(), layers[0], nn.LeakyReLU(0.2, True), layers[1],
                                 nn.LeakyReLU(0.2, True), layers[2])

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x).squeeze(1)


def build_gan_dense(cfg: ModelConfig) -> dict[str, nn.Module]:
    return {"generator": DenseGenerator(cfg), "discriminator": DenseDiscriminator(cfg)}


register_family(Family(
    name="gan-dense",
    kind="gan",
    build=build_gan_dense,
    description="Minimal dense GAN (Goodfellow et al. 2014): MLP generator and discriminator, "
                "BCE loss, Adam(2e-4, 0.5)",
    defaults={"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam", "loss": "bce", "n_critic": 1},
))
