"""Model families: each registers a Family that builds its modules and names its defaults.

A family's modules are returned as a dict: GANs have "generator" and "discriminator"
(the WGAN critic is also "discriminator"); VAEs have "encoder" and "decoder".
Every image-producing module is called as `module(z, labels)` with z of shape (N, latent_dim).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import nn

from latentstudio.errors import UserError


@dataclass(frozen=True)
class ModelConfig:
    """What every family needs to build its networks."""

    resolution: int = 32
    channels: int = 3
    latent_dim: int = 100
    width: int = 64
    num_classes: int = 0
    spectral_norm: bool = False
    batch_norm: bool = True  # in the discriminator/critic (WGAN-GP turns it off)


@dataclass(frozen=True)
class Family:
    """A model family: how to build it, how it trains, and its default settings."""

    name: str
    kind: Literal["gan", "vae"]
    build: Callable[[ModelConfig], dict[str, nn.Module]]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    conditional: bool = False

    @property
    def sampler(self) -> str:
        """The module that turns latents into images."""
        return "generator" if self.kind == "gan" else "decoder"


FAMILIES: dict[str, Family] = {}

# Modules under latentstudio.models that register families when imported.
_FAMILY_MODULES = ["dcgan", "gan_dense", "cgan", "wgan", "vae", "cppn"]


def register_family(family: Family) -> Family:
    """Make `family` available as `--model NAME`."""
    FAMILIES[family.name] = family
    return family


def get_family(name: str) -> Family:
    """The family registered as `name`, or a UserError listing the valid names."""
    for module in _FAMILY_MODULES:
        try:
            importlib.import_module(f"latentstudio.models.{module}")
        except ModuleNotFoundError as e:
            if e.name != f"latentstudio.models.{module}":
                raise
    if name not in FAMILIES:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2015): conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
