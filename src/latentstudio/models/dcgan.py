"""DCGAN (Radford et al. 2015), generic over resolution and channels.

The generator grows a 4x4 (or 7x7 for 28 px) map by transposed-conv stages of stride 2, halving the
feature maps each stage; the discriminator mirrors it with strided convs. Non-square images start
from a map of their aspect ratio (4x8 for 64x128: the shorter side sets the stages). Both optionally take a
class label (used by the conditional family): the generator concatenates a label embedding to z;
the discriminator reads one-hot label maps beside the image channels (as in the first conditional
GANs, Mirza & Osindero 2014) and adds a projection term on its last features (Miyato & Koyama
2018). The input maps let it relate class and shape from the first layer: with the projection
alone, on `shapes`, class agreement grew far slower and samples within a class were near copies.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from latentstudio.errors import UserError
from latentstudio.models import Family, ModelConfig, init_weights, register_family
from latentstudio.models.spectral import spectral_norm as _sn


def stages_for(resolution: int) -> tuple[int, int]:
    """(start size, number of x2 stages) for a resolution, or a UserError."""
    for start in (4, 7):
        k = math.log2(resolution / start) if start <= resolution <= 256 else -1
        if k >= 1 and k == int(k):
            return start, int(k)
    raise UserError(
        f"resolution {resolution} is not supported: use 28, 32, 64 or 128 "
        "(any 4*2^k or 7*2^k from 8 to 256 also works)"
    )


def base_map(width: int, height: int) -> tuple[int | tuple[int, int], int]:
    """(start map: a side, or (height, width) when not square; number of x2 stages) for an
    image size, or a UserError listing sizes that work. The shorter side sets the stages; the
    longer one must then be a whole multiple of 2^stages."""
    if width == height:
        return stages_for(width)
    short, long = min(width, height), max(width, height)
    try:
        start, k = stages_for(short)
    except UserError:
        raise UserError(f"resolution {width}x{height} is not supported: the shorter side must be "
                        "28, 32, 64 or 128 (any 4*2^k or 7*2^k from 8 to 256), e.g. 64x128") from None
    step = 2 ** k
    if long % step or long > 1024:
        lower, upper = long // step * step, (long // step + 1) * step
        shown = [f"{short}x{v}" if width == short else f"{v}x{short}" for v in (lower, upper)
                 if short <= v <= 1024] or [f"{short}x1024" if width == short else f"1024x{short}"]
        raise UserError(f"resolution {width}x{height} is not supported: with a shorter side of "
                        f"{short} the longer side must be a multiple of {step} up to 1024, e.g. "
                        f"{' or '.join(shown)}")
    return (height // step, width // step), k


def check_size(width: int, height: int) -> None:
    """A UserError unless DCGAN can make width x height images."""
    base_map(width, height)


class Generator(nn.Module):
    """z (N, latent_dim) [+ labels (N,)] -> images (N, C, H, W) in [-1, 1]."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        start, k = base_map(*cfg.size)
        self.num_classes = cfg.num_classes
        in_dim = cfg.latent_dim
        if cfg.num_classes:
            self.embed = nn.Embedding(cfg.num_classes, cfg.latent_dim)
            # Rows of norm ~1, like a one-hot code, against |z| ~ sqrt(latent_dim): G starts
            # close to an unconditional DCGAN and learns how much to use the label. With N(0, 1)
            # rows it leans on the label from the start and ignores z (on `shapes`, every sample
            # of a class stayed identical for thousands of steps).
            nn.init.normal_(self.embed.weight, 0.0, cfg.latent_dim ** -0.5)
            in_dim += cfg.latent_dim
        ch = cfg.width * 2 ** (k - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(in_dim, ch, start, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(True),
        ]
        for _ in range(k - 1):
            layers += [
                nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False),
                nn.BatchNorm2d(ch // 2),
                nn.ReLU(True),
            ]
            ch //= 2
        layers += [nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1, bias=False), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        self.apply(init_weights)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = torch.cat([z, self.embed(labels)], dim=1)
        return self.net(z[:, :, None, None])


class Discriminator(nn.Module):
    """images (N, C, H, W) [+ labels] -> one logit (or critic score) per image, shape (N,)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        start, k = base_map(*cfg.size)

        def norm(m: nn.Module) -> nn.Module:
            # Initialise before spectral norm: afterwards .weight is a computed tensor, and
            # init_weights would write into a temporary and leave the real weights untouched.
            init_weights(m)
            return _sn(m) if cfg.spectral_norm else m

        ch = cfg.width
        batch_norm = cfg.batch_norm and not cfg.spectral_norm  # spectral norm replaces it
        layers: list[nn.Module] = [
            norm(nn.Conv2d(cfg.channels + cfg.num_classes, ch, 4, 2, 1, bias=False)),
            nn.LeakyReLU(0.2, True),
        ]
        for _ in range(k - 1):
            layers.append(norm(nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=not batch_norm)))
            if batch_norm:
                layers.append(nn.BatchNorm2d(ch * 2))
            layers.append(nn.LeakyReLU(0.2, True))
            ch *= 2
        self.features = nn.Sequential(*layers)
        self.head = norm(nn.Conv2d(ch, 1, start, 1, 0, bias=False))
        self.num_classes = cfg.num_classes
        if cfg.num_classes:
            embed = nn.Embedding(cfg.num_classes, ch)
            # Small, like the conv weights: N(0, 1) rows make the projection term a random
            # per-class offset of several units that swamps the logits at the start.
            nn.init.normal_(embed.weight, 0.0, 0.02)
            self.embed = norm(embed)
        for m in self.features:
            if isinstance(m, nn.BatchNorm2d):
                init_weights(m)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        if self.num_classes:
            # Without labels the maps stay zero, so the feature layers still run (and can be
            # inspected, e.g. to dream through them) before the projection asks for labels.
            n, _, height, width = x.shape
            maps = x.new_zeros(n, self.num_classes, height, width)
            if labels is not None:
                maps[torch.arange(n, device=x.device), labels] = 1
            x = torch.cat([x, maps], dim=1)
        h = self.features(x)
        out = self.head(h).flatten(1).sum(1)
        if self.num_classes:
            if labels is None:
                raise ValueError("this discriminator is conditional: pass labels")
            # Projection on sum-pooled features, as in the paper: with mean pooling the class
            # term was 1/(H*W) of the head's scale, and D barely told labels apart.
            out = out + (self.embed(labels) * h.sum((2, 3))).sum(1)
        return out


def build_dcgan(cfg: ModelConfig) -> dict[str, nn.Module]:
    return {"generator": Generator(cfg), "discriminator": Discriminator(cfg)}


register_family(Family(
    name="dcgan",
    kind="gan",
    build=build_dcgan,
    description="Deep convolutional GAN (Radford et al. 2015): BCE loss, Adam(2e-4, 0.5)",
    defaults={"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam", "loss": "bce", "n_critic": 1},
    check_size=check_size,
))
