"""CPPN generator (Ha 2016, "Generating Large Images from Latent Vectors").

A compositional pattern-producing network maps one pixel's coordinates (x, y, r = sqrt(x² + y²))
and the image's latent z to that pixel's colour. Every pixel is computed independently, so the
same network renders at any size: trained at 32 px, it renders 4096 px by evaluating more
coordinates, tile by tile. Coordinates span [-scale, scale] across the shorter side of the image
(pixel centres), so a wider canvas shows more of the pattern rather than stretching it.

The family `cppn-gan` pairs this generator with the DCGAN discriminator.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from latentstudio.errors import UserError
from latentstudio.models import Family, ModelConfig, register_family
from latentstudio.models.dcgan import Discriminator

DEFAULT_LAYERS = 4
DEFAULT_SCALE = 8.0  # coordinate range, as in Ha's code; larger values give finer detail


def coordinates(width: int, height: int, scale: float, x0: int = 0, y0: int = 0,
                tile_w: int | None = None, tile_h: int | None = None) -> torch.Tensor:
    """(x, y, r) of the pixel centres of a tile of a width x height canvas, shape (h*w, 3)."""
    tile_w = width - x0 if tile_w is None else tile_w
    tile_h = height - y0 if tile_h is None else tile_h
    unit = 2.0 * scale / min(width, height)  # one pixel, in coordinate units
    xs = (torch.arange(x0, x0 + tile_w, dtype=torch.float64) + 0.5 - width / 2) * unit
    ys = (torch.arange(y0, y0 + tile_h, dtype=torch.float64) + 0.5 - height / 2) * unit
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    r = torch.sqrt(x * x + y * y)
    return torch.stack([x, y, r], dim=-1).reshape(-1, 3).float()


class CPPNGenerator(nn.Module):
    """z (N, latent_dim) [+ labels] -> images in [-1, 1]: (N, C, R, R) from forward, any size from render."""

    def __init__(self, cfg: ModelConfig, hidden: int | None = None, layers: int = DEFAULT_LAYERS,
                 scale: float = DEFAULT_SCALE) -> None:
        super().__init__()
        self.resolution = cfg.resolution
        self.channels = cfg.channels
        self.scale = scale
        self.num_classes = cfg.num_classes
        hidden = hidden or 2 * cfg.width  # with just `width` units it stayed blurry far longer
        if cfg.num_classes:
            self.embed = nn.Embedding(cfg.num_classes, cfg.latent_dim)
        self.z_in = nn.Linear(cfg.latent_dim, hidden)
        self.coord_in = nn.Linear(3, hidden, bias=False)
        body: list[nn.Module] = []
        for _ in range(layers - 1):
            body += [nn.Linear(hidden, hidden), nn.Tanh()]
        self.body = nn.Sequential(*body)
        self.out = nn.Linear(hidden, cfg.channels)

    def randomize_(self, seed: int, std: float = 1.0) -> CPPNGenerator:
        """Random N(0, std²) weights, as in Ha's untrained CPPN art; returns self."""
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * std)
        return self

    def _z_features(self, z: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        if self.num_classes:
            if labels is None:
                raise ValueError("this generator is conditional: pass labels")
            z = z + self.embed(labels)
        return self.z_in(z)

    def _pixels(self, hz: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
        """Colours (N, C, P) of P coordinates for latent features hz (N, hidden)."""
        h = torch.tanh(hz[:, None, :] + self.coord_in(coords.to(hz))[None])
        return torch.tanh(self.out(self.body(h))).transpose(1, 2)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        # One tile, returned as it is: no buffer sized by the batch (which ONNX would fix).
        ((_, _, image),) = self.tiles(z, self.resolution, self.resolution, labels, tile=self.resolution)
        return image

    def tiles(self, z: torch.Tensor, width: int, height: int, labels: torch.Tensor | None = None,
              tile: int = 256) -> Iterator[tuple[int, int, torch.Tensor]]:
        """(y0, x0, block (N, C, h, w)) for each tile of the canvas; memory grows with tile², not size."""
        if width <= 0 or height <= 0 or tile <= 0:
            raise ValueError(f"width, height and tile must be positive, got {width}, {height}, {tile}")
        hz = self._z_features(z, labels)
        for y0 in range(0, height, tile):
            th = min(tile, height - y0)
            for x0 in range(0, width, tile):
                tw = min(tile, width - x0)
                coords = coordinates(width, height, self.scale, x0, y0, tw, th)
                yield y0, x0, self._pixels(hz, coords).reshape(-1, self.channels, th, tw)

    def render(self, z: torch.Tensor, width: int, height: int, labels: torch.Tensor | None = None,
               tile: int = 256) -> torch.Tensor:
        """Images (N, C, height, width) in [-1, 1], computed tile by tile."""
        out = torch.empty(len(z), self.channels, height, width, device=z.device)
        for y0, x0, block in self.tiles(z, width, height, labels, tile):
            out[:, :, y0:y0 + block.shape[2], x0:x0 + block.shape[3]] = block
        return out


def random_cppn(seed: int, latent_dim: int = 8, hidden: int = 32, layers: int = DEFAULT_LAYERS,
                scale: float = 8.0, channels: int = 3) -> CPPNGenerator:
    """An untrained CPPN with N(0, 1) weights from `seed`, in eval mode."""
    cfg = ModelConfig(resolution=32, channels=channels, latent_dim=latent_dim, width=hidden)
    net = CPPNGenerator(cfg, hidden=hidden, layers=layers, scale=scale)
    # Unit-variance weights on `hidden` inputs saturate tanh; scaling by 1/sqrt(fan-in) of the
    # hidden layers would wash the patterns out, so only the output layer is tamed.
    net.randomize_(seed)
    with torch.no_grad():
        net.out.weight.mul_(1.0 / math.sqrt(hidden))
    return net.eval().requires_grad_(False)


@dataclass(frozen=True)
class CPPNSettings:
    """The cppn-gan family's own settings (`train --model cppn-gan --layers 6 --coordinate-scale 4`)."""

    layers: int = field(default=DEFAULT_LAYERS,
                        metadata={"help": "tanh layers of the generator's coordinate network"})
    coordinate_scale: float = field(default=DEFAULT_SCALE, metadata={
        "help": "coordinates span [-scale, scale] across the image: larger, finer detail"})

    def __post_init__(self) -> None:
        if not 1 <= self.layers <= 32:
            raise UserError(f"--layers must be between 1 and 32, got {self.layers}")
        if not 0 < self.coordinate_scale <= 1000:
            raise UserError(f"--coordinate-scale must be in (0, 1000], got {self.coordinate_scale}")


def build_cppn_gan(cfg: ModelConfig) -> dict[str, nn.Module]:
    own = CPPNSettings(**cfg.family_settings)
    generator = CPPNGenerator(cfg, layers=own.layers, scale=own.coordinate_scale)
    return {"generator": generator, "discriminator": Discriminator(cfg)}


register_family(Family(
    name="cppn-gan",
    kind="gan",
    build=build_cppn_gan,
    description="CPPN generator (Ha 2016) with a DCGAN discriminator: renders at any size "
                "(latentstudio render RUN --width 4096)",
    defaults={"lr": 2e-4, "betas": (0.5, 0.999), "optimizer": "adam", "loss": "bce", "n_critic": 1,
              "width": 32},
    settings=CPPNSettings,
))
