"""Variational autoencoders (Kingma & Welling 2013): a dense one and a convolutional one.

The encoder maps an image to the mean and log-variance of a diagonal Gaussian posterior; the
decoder maps a latent to pixel logits, with images = tanh(logits / 2) = 2 sigmoid(logits) - 1,
so both the Bernoulli (BCE) and the Gaussian (MSE) reconstruction losses read the same output.
The conv VAE follows the classic small CVAE: strided convs (32, 64 feature maps at width 64) to
2 x latent; decoder dense -> 7x7x32 (28 px) or 8x8x32 (32 px and up) -> transposed convs.
Non-square images (vae-conv) have a bottleneck of their aspect ratio (8x16 for 64x128).
Labels are accepted and ignored (the families are unconditional).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from latentstudio.errors import UserError
from latentstudio.models import Family, ModelConfig, register_family
from latentstudio.models.dcgan import stages_for


def vae_stages(resolution: int) -> tuple[int, int]:
    """(start size, number of x2 stages) with a 7x7 or 8x8 bottleneck where possible.

    28 -> (7, 2), 32 -> (8, 2), 64 -> (8, 3), 128 -> (8, 4); other sizes as DCGAN's.
    """
    for start in (8, 7):
        k = math.log2(resolution / start) if resolution > start else 0
        if resolution % start == 0 and k >= 1 and k == int(k):
            return start, int(k)
    return stages_for(resolution)


def vae_map(width: int, height: int) -> tuple[int, int, int]:
    """(bottleneck height, bottleneck width, number of x2 stages) for an image size, or a
    UserError listing sizes that work. The shorter side sets the stages, as in `vae_stages`."""
    if width == height:
        start, k = vae_stages(width)
        return start, start, k
    try:
        _, k = vae_stages(min(width, height))
    except UserError:
        raise UserError(f"resolution {width}x{height} is not supported: the shorter side must be "
                        "28, 32, 64 or 128 (any 4*2^k or 7*2^k from 8 to 256), e.g. 64x128") from None
    step = 2 ** k
    if width % step or height % step or max(width, height) > 1024:
        w, h = (min(1024, max(step, v // step * step)) for v in (width, height))
        raise UserError(f"resolution {width}x{height} is not supported: both sides must be "
                        f"multiples of {step} up to 1024, e.g. {w}x{h}")
    return height // step, width // step, k


class _Decoder(nn.Module):
    """Shared decoder interface: forward gives images in [-1, 1], logits gives pre-activations."""

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return torch.tanh(self.logits(z, labels) / 2)


class ConvEncoder(nn.Module):
    """images (N, C, H, W) -> (mu, logvar), each (N, latent_dim)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        start_h, start_w, k = vae_map(*cfg.size)
        chans = [cfg.channels] + [max(1, cfg.width * 2 ** i // 2) for i in range(k)]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.Conv2d(c_in, c_out, 4, 2, 1), nn.ReLU(True)]
        self.features = nn.Sequential(*layers, nn.Flatten())
        self.head = nn.Linear(chans[-1] * start_h * start_w, 2 * cfg.latent_dim)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.head(self.features(x)).chunk(2, dim=1)
        return mu, logvar


class ConvDecoder(_Decoder):
    """z (N, latent_dim) -> dense start x start x width/2 -> transposed convs -> (N, C, H, W)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        start_h, start_w, k = vae_map(*cfg.size)
        self.start, self.base = (start_h, start_w), max(1, cfg.width // 2)
        self.dense = nn.Sequential(nn.Linear(cfg.latent_dim, self.base * start_h * start_w), nn.ReLU(True))
        # The encoder's feature maps in reverse: 32 -> 64 -> 32 at width 64, as in the classic CVAE.
        chans = [self.base] + [max(1, cfg.width * 2 ** i // 2) for i in reversed(range(k))]
        layers: list[nn.Module] = []
        for c_in, c_out in zip(chans[:-1], chans[1:], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1), nn.ReLU(True)]
        layers.append(nn.Conv2d(chans[-1], cfg.channels, 3, 1, 1))
        self.net = nn.Sequential(*layers)

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = self.dense(z).view(-1, self.base, *self.start)
        return self.net(h)


class DenseEncoder(nn.Module):
    """images -> flatten -> two hidden layers -> (mu, logvar)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        hidden = 8 * cfg.width
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(cfg.channels * cfg.resolution ** 2, hidden), nn.ReLU(True),
            nn.Linear(hidden, hidden // 2), nn.ReLU(True),
            nn.Linear(hidden // 2, 2 * cfg.latent_dim),
        )

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.net(x).chunk(2, dim=1)
        return mu, logvar


class DenseDecoder(_Decoder):
    """z -> two hidden layers -> pixel logits (N, C, R, R)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        hidden = 8 * cfg.width
        self.shape = (cfg.channels, cfg.resolution, cfg.resolution)
        self.net = nn.Sequential(
            nn.Linear(cfg.latent_dim, hidden // 2), nn.ReLU(True),
            nn.Linear(hidden // 2, hidden), nn.ReLU(True),
            nn.Linear(hidden, cfg.channels * cfg.resolution ** 2),
        )

    def logits(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z).view(-1, *self.shape)


def _check(cfg: ModelConfig) -> None:
    if cfg.num_classes:
        raise UserError("the VAE families are unconditional; drop the class labels")


def build_vae_conv(cfg: ModelConfig) -> dict[str, nn.Module]:
    _check(cfg)
    return {"encoder": ConvEncoder(cfg), "decoder": ConvDecoder(cfg)}


def build_vae_dense(cfg: ModelConfig) -> dict[str, nn.Module]:
    _check(cfg)
    return {"encoder": DenseEncoder(cfg), "decoder": DenseDecoder(cfg)}


_VAE_DEFAULTS = {"lr": 1e-3, "betas": (0.9, 0.999), "optimizer": "adam", "epochs": 20}

register_family(Family(
    name="vae-conv",
    kind="vae",
    build=build_vae_conv,
    description="Convolutional VAE: strided convs -> 2 x latent, dense -> 7x7/8x8 -> transposed "
                "convs; --recon bce|mse, --beta, --kl-warmup; Adam(1e-3)",
    defaults=dict(_VAE_DEFAULTS),
    check_size=vae_map,
))

register_family(Family(
    name="vae-dense",
    kind="vae",
    build=build_vae_dense,
    description="Dense (MLP) VAE with two hidden layers of 8 x width and 4 x width units; Adam(1e-3)",
    defaults=dict(_VAE_DEFAULTS),
))
