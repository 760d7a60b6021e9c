"""FastGAN (Liu et al. 2021, "Towards Faster and Stabilized GAN Training for High-fidelity
Few-shot Image Synthesis"): a GAN that learns from a few hundred images at 64-1024 px.

Generator: a 4x4 start from z, then nearest-neighbour upsampling + 3x3 convs with GLU
activations up to the resolution; skip-layer excitation (SLE) lets the 4x4-32x32 stages gate the
channels of the 64-512 px stages (each stage s/16 -> s). The "comp" stages (8, 32, 128, 512 px)
have two convs and learned per-pixel noise, the others one conv, as in the paper.

Discriminator: strided residual down blocks to 8x8 with SLE between stages three apart, a
second path that sees the image at half its side (at most 128 px), and small decoders that
rebuild the whole image (at that same half size) from the 8x8 features and from the small path,
and a random quarter from the 16x16 features (the self-supervised auto-encoding that keeps it
from overfitting a few images). Below 256 px, where the official code stops, every map keeps
the channel count its side has in the official 256 px layout. Asked with
`reconstruct=True` on real images it returns its reconstructions and their targets; the
adversarial step adds their L1 distance to its loss (the paper uses LPIPS-VGG, which cannot be
downloaded here; see the README). Every conv has spectral norm, as in the official code (ours,
models/spectral.py, which compiles).

Differences from the official code, for one image in and one logit per image out like the other
families: the discriminator builds its small view by resizing (area) the image it gets (the
official generator also outputs a 128 px image for it), and each head's logit map is averaged
per image.
Noise is injected only in training mode, so a seed always draws the same picture.

Non-square images start from a map of their aspect ratio (4x8 for 64x128): the shorter side
names the stages, and every map, reconstruction and quarter keeps that ratio.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from latentstudio.errors import UserError
from latentstudio.models import Family, ModelConfig, register_family
from latentstudio.models.spectral import spectral_norm

RESOLUTIONS = (64, 128, 256, 512, 1024)
# Feature maps per stage, as multiples of --width (the official ngf/ndf = 64 gives its sizes).
G_MULT = {4: 16, 8: 8, 16: 4, 32: 2, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
D_MULT = {4: 16, 8: 16, 16: 8, 32: 4, 64: 2, 128: 1, 256: 0.5, 512: 0.25, 1024: 0.125}
COMP_STAGES = (8, 32, 128, 512)  # two convs and noise
SMALL = 128  # the largest side the discriminator's second path sees


def _conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 0) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, k, stride, pad, bias=False))


def _channels(mult: dict[int, float], width: int) -> dict[int, int]:
    return {size: max(1, int(m * width)) for size, m in mult.items()}


class GLU(nn.Module):
    """Gated linear unit over channels: the first half times the sigmoid of the second."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * torch.sigmoid(b)


class NoiseInjection(nn.Module):
    """Adds per-pixel Gaussian noise scaled by a learned weight (zero at first), while training."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return x
        n, _, h, w = x.shape
        return x + self.weight * torch.randn(n, 1, h, w, device=x.device, dtype=x.dtype)


class SLE(nn.Module):
    """Skip-layer excitation: a low-resolution map gates the channels of a high-resolution one."""

    def __init__(self, c_small: int, c_big: int) -> None:
        super().__init__()
        self.gate = nn.Sequential(nn.AdaptiveAvgPool2d(4), _conv(c_small, c_big, 4), nn.SiLU(),
                                  _conv(c_big, c_big, 1), nn.Sigmoid())

    def forward(self, small: torch.Tensor, big: torch.Tensor) -> torch.Tensor:
        return big * self.gate(small)


def _up(cin: int, cout: int, comp: bool = False) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Upsample(scale_factor=2, mode="nearest"), _conv(cin, cout * 2, 3, 1, 1)]
    if comp:
        layers.append(NoiseInjection())
    layers += [nn.BatchNorm2d(cout * 2), GLU()]
    if comp:
        layers += [_conv(cout, cout * 2, 3, 1, 1), NoiseInjection(), nn.BatchNorm2d(cout * 2), GLU()]
    return nn.Sequential(*layers)


def check_resolution(resolution: int) -> None:
    if resolution not in RESOLUTIONS:
        raise UserError(f"fastgan makes {', '.join(map(str, RESOLUTIONS))} px images, not "
                        f"{resolution}; use --resolution 64 (a laptop) up to 1024 (a GPU)")


def check_size(width: int, height: int) -> tuple[int, int]:
    """The (height, width) of the 4 px start map for an image size, or a UserError listing
    sizes that work: the shorter side one of RESOLUTIONS, the longer a multiple of a quarter
    of it, up to 1024."""
    if width == height:
        check_resolution(width)
        return 4, 4
    short, long = min(width, height), max(width, height)
    step = short // 4
    if short not in RESOLUTIONS:
        raise UserError(f"fastgan cannot make {width}x{height} images: the shorter side must be "
                        f"{', '.join(map(str, RESOLUTIONS))}, e.g. 64x128 or 128x256")
    if long % step or long > 1024:
        near = [v for v in (long // step * step, (long // step + 1) * step) if short <= v <= 1024] \
            or [1024]
        shown = " or ".join(f"{short}x{v}" if width == short else f"{v}x{short}" for v in near)
        raise UserError(f"fastgan cannot make {width}x{height} images: with a shorter side of "
                        f"{short} the longer must be a multiple of {step} up to 1024, e.g. {shown}")
    return height // step, width // step


def _scaled(side: int, start: tuple[int, int]) -> tuple[int, int]:
    """(height, width) of a map whose shorter side is `side`, with the start map's ratio."""
    return side * start[0] // min(start), side * start[1] // min(start)


class Generator(nn.Module):
    """z (N, latent_dim) -> images (N, C, H, W) in [-1, 1].

    Grown from a smaller run (`grown_from` px, see grow_key): it also draws an image at that
    size with the smaller run's last conv, and adds it, upsampled, to its own times a learned
    gain that starts at zero; so it starts with the smaller run's pictures, and its new stages
    learn what the larger size adds (the "skip" outputs of StyleGAN2's generator, two of them).
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        start = check_size(*cfg.size)
        short = min(cfg.size)
        if cfg.num_classes:
            raise UserError("fastgan is unconditional; use cgan for class-conditional models")
        self.num_classes = 0
        ch = _channels(G_MULT, cfg.width)
        # Stages are named by the shorter side of their maps.
        self.sizes = [2 ** i for i in range(3, int(math.log2(short)) + 1)]
        self.init = nn.Sequential(
            spectral_norm(nn.ConvTranspose2d(cfg.latent_dim, ch[4] * 2, 4 if start == (4, 4) else start,
                                             1, 0, bias=False)),
            nn.BatchNorm2d(ch[4] * 2), GLU())
        self.ups = nn.ModuleDict({str(s): _up(ch[s // 2], ch[s], s in COMP_STAGES) for s in self.sizes})
        self.sles = nn.ModuleDict({str(s): SLE(ch[s // 16], ch[s]) for s in self.sizes
                                   if 64 <= s <= 512})
        self.to_image = _conv(ch[short], cfg.channels, 3, 1, 1)
        self.grown_from = FastGANSettings(**cfg.family_settings).grown_from
        if self.grown_from:
            smaller = [s for s in self.sizes[:-1] if s in RESOLUTIONS]
            if self.grown_from not in smaller:
                raise UserError(f"a fastgan at {short} px cannot be grown from {self.grown_from} "
                                f"px: grow from {', '.join(map(str, smaller)) or 'none'}")
            self.base_image = _conv(ch[self.grown_from], cfg.channels, 3, 1, 1)
            # Not zero weights in to_image: spectral norm would divide by a zero norm.
            self.own_gain = nn.Parameter(torch.zeros(1))

    def grown_stages(self) -> nn.ModuleList:
        """The stages a grown generator took from the smaller run: up to `grown_from` px."""
        kept = [self.ups[str(s)] for s in self.sizes if s <= self.grown_from]
        kept += [self.sles[str(s)] for s in self.sizes if s <= self.grown_from and str(s) in self.sles]
        return nn.ModuleList([self.init, *kept] if self.grown_from else [])

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        feats = {4: self.init(z[:, :, None, None])}
        for s in self.sizes:
            x = self.ups[str(s)](feats[s // 2])
            feats[s] = self.sles[str(s)](feats[s // 16], x) if str(s) in self.sles else x
        image = self.to_image(feats[self.sizes[-1]])
        if self.grown_from:
            base = F.interpolate(self.base_image(feats[self.grown_from]), size=image.shape[-2:],
                                 mode="bilinear", align_corners=False)
            image = base + self.own_gain * image
        return torch.tanh(image)


class _DownComp(nn.Module):
    """A strided conv block averaged with a pooled 1x1 shortcut."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.main = nn.Sequential(_conv(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2),
                                  _conv(cout, cout, 3, 1, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))
        self.direct = nn.Sequential(nn.AvgPool2d(2), _conv(cin, cout, 1), nn.BatchNorm2d(cout),
                                    nn.LeakyReLU(0.2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.main(x) + self.direct(x)) / 2


def _down(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(_conv(cin, cout, 4, 2, 1), nn.BatchNorm2d(cout), nn.LeakyReLU(0.2))


class Decoder(nn.Module):
    """Rebuilds an image of (shorter) side `size` from 8x8 features (the paper's simple decoder);
    `start`: the (height, width) ratio of non-square images' 4 px start map."""

    def __init__(self, cin: int, channels: int, size: int, width: int,
                 start: tuple[int, int] = (4, 4)) -> None:
        super().__init__()
        ch = _channels(G_MULT, max(1, width // 2))  # the official decoders use 32 at ngf 64
        pool = 8 if start == (4, 4) else _scaled(8, start)
        layers: list[nn.Module] = [nn.AdaptiveAvgPool2d(pool)]
        c, s = cin, 8
        while s < size:
            s *= 2
            layers.append(_up(c, ch[s]))
            c = ch[s]
        layers += [_conv(c, channels, 3, 1, 1), nn.Tanh()]
        self.main = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)


class Discriminator(nn.Module):
    """images (N, C, H, W) -> logits (N,); with reconstruct=True also (reconstructions, targets)."""

    reconstructs = True  # the adversarial step adds the L1 distance of reconstructions to targets

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        start_map = check_size(*cfg.size)
        self.num_classes = 0
        ch = _channels(D_MULT, cfg.width)
        r, c = min(cfg.size), cfg.channels  # sides below are those of the maps' shorter side
        if r == 1024:
            self.from_big = nn.Sequential(_conv(c, ch[1024], 4, 2, 1), nn.LeakyReLU(0.2),
                                          _conv(ch[1024], ch[512], 4, 2, 1), nn.BatchNorm2d(ch[512]),
                                          nn.LeakyReLU(0.2))
        elif r == 512:
            self.from_big = nn.Sequential(_conv(c, ch[512], 4, 2, 1), nn.LeakyReLU(0.2))
        start = min(r, 256)  # the side of from_big's output
        # Down blocks to 8x8; channel counts follow the official 256 px layout from its end, so
        # a map of side s has ch[2s] channels at every resolution.
        sizes = [start // 2 ** i for i in range(int(math.log2(start // 8)) + 1)]
        if r <= 256:
            self.from_big = nn.Sequential(_conv(c, ch[2 * start], 3, 1, 1), nn.LeakyReLU(0.2))
        cin = ch[2 * start]
        self.downs = nn.ModuleList()
        self.feat_channels = [cin]
        for s in sizes[1:]:
            cout = ch[2 * s]
            self.downs.append(_DownComp(cin, cout))
            self.feat_channels.append(cout)
            cin = cout
        self.sles = nn.ModuleDict({str(i + 3): SLE(self.feat_channels[i], self.feat_channels[i + 3])
                                   for i in range(len(self.feat_channels) - 3)})
        self.part_index = sizes.index(16)
        self.rf_big = nn.Sequential(_conv(cin, ch[8], 1), nn.BatchNorm2d(ch[8]), nn.LeakyReLU(0.2),
                                    _conv(ch[8], 1, 4))
        # The second path sees the image at half its side (at most 128), and a map of side s
        # there has ch[4s] channels, as in the official 256 px layout.
        self.small = min(SMALL, r // 2)
        self.small_shape = _scaled(self.small, start_map)
        small_layers: list[nn.Module] = [_conv(c, ch[2 * self.small], 4, 2, 1), nn.LeakyReLU(0.2)]
        s, cs = self.small // 2, ch[2 * self.small]
        while s > 8:
            nxt = ch[2 * s]
            small_layers.append(_down(cs, nxt))
            cs, s = nxt, s // 2
        self.from_small = nn.Sequential(*small_layers)
        self.rf_small = _conv(cs, 1, 4)
        self.recon_size = min(SMALL, r // 2)  # the official decoders rebuild 128 px of 256
        self.recon_shape = _scaled(self.recon_size, start_map)
        self.decoder_big = Decoder(cin, c, self.recon_size, cfg.width, start_map)
        self.decoder_small = Decoder(cs, c, self.recon_size, cfg.width, start_map)
        self.decoder_part = Decoder(self.feat_channels[self.part_index], c, self.recon_size, cfg.width,
                                    start_map)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None, reconstruct: bool = False):
        feats = [self.from_big(x)]
        for i, down in enumerate(self.downs, start=1):
            f = down(feats[-1])
            feats.append(self.sles[str(i)](feats[i - 3], f) if str(i) in self.sles else f)
        small = self.from_small(F.interpolate(x, size=self.small_shape, mode="area")
                                if tuple(x.shape[-2:]) != self.small_shape else x)
        logits = self.rf_big(feats[-1]).flatten(1).mean(1) + self.rf_small(small).flatten(1).mean(1)
        if not reconstruct:
            return logits
        # A random quarter of the 16x16 features rebuilds the same quarter of the image. Chosen
        # with tensor indices, not a Python int, so the memory estimate can trace it.
        quarter = torch.randint(4, (1,), device=x.device)
        part = _quarter(feats[self.part_index], quarter)
        crop = _quarter(x, quarter)
        shape = self.recon_shape
        whole = F.interpolate(x, size=shape, mode="area") if tuple(x.shape[-2:]) != shape else x
        crop = F.interpolate(crop, size=shape, mode="area") if tuple(crop.shape[-2:]) != shape else crop
        recons = [self.decoder_big(feats[-1]), self.decoder_small(small), self.decoder_part(part)]
        return logits, recons, [whole, whole, crop]


def _quarter(x: torch.Tensor, quarter: torch.Tensor) -> torch.Tensor:
    """Quarter 0-3 (reading order) of maps x (N, C, H, W)."""
    h, w = x.shape[-2] // 2, x.shape[-1] // 2
    rows = torch.div(quarter, 2, rounding_mode="floor") * h + torch.arange(h, device=x.device)
    cols = quarter % 2 * w + torch.arange(w, device=x.device)
    return x.index_select(2, rows).index_select(3, cols)


@dataclass(frozen=True)
class FastGANSettings:
    """The fastgan family's own settings (`train --model fastgan --recon-loss lite0`)."""

    recon_loss: Literal["l1", "lite0"] = field(default="l1", metadata={
        "help": "distance of the discriminator's reconstructions: l1 (pixels) or lite0 (a "
                "perceptual distance on EfficientNet-Lite0 features, LPIPS-like)"})

    grown_from: int = field(default=0, metadata={
        "help": "set by --init-from a smaller fastgan run: the size it was grown from, whose "
                "image the generator adds, upsampled, under its own (0: not grown)"})
    hold_grown: bool = field(default=True, metadata={
        "help": "in a grown run, keep the generator's stages that came from the smaller run as "
                "they were: only the new stages, the base image's conv and the discriminator "
                "learn (--no-hold-grown trains them all)"})

    def __post_init__(self) -> None:
        if self.recon_loss not in ("l1", "lite0"):
            raise UserError(f"--recon-loss must be l1 or lite0, got {self.recon_loss!r}")
        if self.grown_from and self.grown_from not in RESOLUTIONS:
            raise UserError(f"--grown-from must be one of {', '.join(map(str, RESOLUTIONS))} (or "
                            f"0), got {self.grown_from}")


def grow_settings(smaller: int, parent_settings: dict[str, Any]) -> dict[str, Any]:
    """The settings of a fastgan grown from a `smaller` px run with `parent_settings`."""
    if parent_settings.get("grown_from"):
        raise UserError(f"cannot grow a run that was itself grown (from {parent_settings['grown_from']} "
                        f"px): grow from that run, or go on with --resume or --init-from at its size")
    return {"grown_from": smaller}


def grow_key(network: str, key: str, smaller: int, size: int) -> str:
    """Where tensor `key` of a fastgan `network` at `smaller` px goes in one at `size` px (the
    shorter sides). The generator's stages keep their names, and its last conv draws the base
    image; the discriminator's blocks of a map side keep their shapes at every size, so its
    down blocks, their excitations and the small path's blocks move along by the stages added."""
    if network == "generator":
        return "base_image." + key.removeprefix("to_image.") if key.startswith("to_image.") else key
    added = int(math.log2(min(size, 256) // min(smaller, 256)))
    added_small = int(math.log2(min(SMALL, size // 2) // min(SMALL, smaller // 2)))
    key = re.sub(r"^(downs|sles)\.(\d+)\.", lambda m: f"{m[1]}.{int(m[2]) + added}.", key)

    def small_block(m: re.Match) -> str:  # the small path: a conv from the image, then blocks
        index = int(m[1])
        return f"from_small.{index + added_small if index >= 2 else index}."
    return re.sub(r"^from_small\.(\d+)\.", small_block, key)


def build_fastgan(cfg: ModelConfig) -> dict[str, nn.Module]:
    settings = FastGANSettings(**cfg.family_settings)
    generator = Generator(cfg)
    if settings.grown_from and settings.hold_grown:
        # Measured growing 64 -> 256 px for 5 minutes on a CPU: with these trained too, the
        # new discriminator's first gradients wore away the smaller run's shapes.
        for p in generator.grown_stages().parameters():
            p.requires_grad_(False)
    return {"generator": generator, "discriminator": Discriminator(cfg)}


register_family(Family(
    name="fastgan",
    kind="gan",
    build=build_fastgan,
    description="FastGAN (Liu et al. 2021): skip-layer excitation, GLU, a self-supervised "
                "discriminator; for a few hundred images at 64-1024 px; hinge loss, Adam(2e-4, 0.5), "
                "DiffAugment without cutout",
    # The official code's DiffAugment policy has no cutout. Measured on 500 emoji at 64 px, two
    # at once on 2 CPU cores, FID lite0 / domain: with cutout 109.0 / 0.74 after 10 minutes and
    # 106.6 / 0.69 after 20, without 100.8 / 0.68 and 86.3 / 0.67 (README, "Few images").
    defaults={"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam", "loss": "hinge", "n_critic": 1,
              "width": 64, "diffaug_policy": "color,translation"},
    resolutions=RESOLUTIONS,
    settings=FastGANSettings,
    check_size=check_size,
    grow=grow_settings,
    grow_key=grow_key,
))
