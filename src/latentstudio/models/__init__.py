"""Model families and kinds, found by registration.

A *family* (dcgan, vae-conv, ...) builds its networks, names the training defaults it prefers and
may declare hyper-parameters of its own as a dataclass (`settings`): `latentstudio train` turns
each field into a flag, config.json stores the values, and the family's `build` reads them from
`ModelConfig.family_settings`. A *kind* (gan, vae) says what the rest of latentstudio needs to
know about a family's networks: which module draws images, whether one encodes images, how the
preview grid is laid out, and which training step trains them (see models/kinds.py).

A family's modules are returned as a dict (GANs: "generator" and "discriminator"; VAEs: "encoder"
and "decoder"). Every image-producing module is called as `module(z, labels)`.

Every module of this package is imported on first lookup, so a family or kind registers itself
from its own file. Modules named in $LATENTSTUDIO_PLUGINS (comma-separated) and the entry points
of the group `latentstudio.models` of installed packages are imported too.
"""

from __future__ import annotations

import dataclasses
import importlib
import os
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import torch
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
    family_settings: dict[str, Any] = field(default_factory=dict)  # the family's own, as a dict
    height: int | None = None  # non-square images: their height (`resolution` is the width)

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the images in pixels."""
        return self.resolution, self.height or self.resolution


@dataclass(frozen=True)
class Kind:
    """What the code outside a family needs to know about its kind of networks."""

    name: str
    image_module: str  # the module that turns latents into images
    step: str  # "module:Class" of the training step; imported by the trainer only
    description: str = ""
    # (modules, images in [-1, 1], labels) -> latents, for kinds with an encoder
    encode: Callable[[dict[str, nn.Module], torch.Tensor, torch.Tensor | None], torch.Tensor] | None = None
    # What each row of a preview group shows: "sample", "real" (training images) or "recon"
    preview_rows: tuple[str, ...] = ("sample",)
    shown_settings: tuple[str, ...] = ()  # the TrainConfig fields `latentstudio models` lists
    # The TrainConfig fields of one kind of training (not every kind's, like lr) that this kind's
    # step reads: a flag for such a field that the model's own kind does not read is a UserError
    # (it would do nothing), e.g. --augment on a VAE.
    step_settings: tuple[str, ...] = ()

    @property
    def can_encode(self) -> bool:
        return self.encode is not None

    def latents(self, n: int, dim: int, generator: torch.Generator) -> torch.Tensor:
        """n latents of size dim drawn from the kind's prior (standard normal)."""
        return torch.randn(n, dim, generator=generator)


@dataclass(frozen=True)
class Family:
    """A model family: how to build it, its kind, its defaults and its own settings."""

    name: str
    kind: str
    build: Callable[[ModelConfig], dict[str, nn.Module]]
    description: str
    defaults: dict[str, Any] = field(default_factory=dict)  # TrainConfig fields
    conditional: bool = False
    settings: type | None = None  # a dataclass of the family's own hyper-parameters
    resolutions: tuple[int, ...] | None = None  # the image sizes it makes; None: any
    # Checks a non-square (width, height) (a UserError listing valid sizes); None: square only.
    check_size: Callable[[int, int], Any] | None = None
    # Growing (`--init-from` a run of this family at a smaller size): the family's settings
    # for networks grown from (that size, the smaller run's own settings), raising a UserError
    # when it cannot be grown; and where each (network, tensor name, smaller size, this size)
    # of the smaller run goes here: tensors that land nowhere or do not fit start fresh.
    # None: its runs cannot grow.
    grow: Callable[[int, dict[str, Any]], dict[str, Any]] | None = None
    grow_key: Callable[[str, str, int, int], str] | None = None

    @property
    def hooks(self) -> Kind:
        """The family's kind."""
        return get_kind(self.kind)

    def settings_from(self, values: dict[str, Any]) -> Any:
        """The family's settings dataclass from plain values (checked by its __post_init__)."""
        if self.settings is None:
            if values:
                raise UserError(f"model {self.name!r} has no setting(s) {', '.join(sorted(values))}")
            return None
        known = {f.name for f in dataclasses.fields(self.settings)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise UserError(f"model {self.name!r} has no setting(s) {', '.join(unknown)}; its own "
                            f"are: {', '.join(sorted(known))}")
        try:
            return self.settings(**values)
        except TypeError as e:
            raise UserError(f"bad settings for model {self.name!r}: {e}") from None


FAMILIES: dict[str, Family] = {}
KINDS: dict[str, Kind] = {}
_imported: set[str] = set()


def register_family(family: Family) -> Family:
    """Make `family` available as `--model NAME`."""
    FAMILIES[family.name] = family
    return family


def register_kind(kind: Kind) -> Kind:
    """Make `kind` available to families."""
    KINDS[kind.name] = kind
    return kind


def _import(name: str) -> None:
    if name in _imported:
        return
    try:
        importlib.import_module(name)
    except ImportError as e:
        raise UserError(f"cannot import model plugin {name!r}: {e}") from None
    _imported.add(name)


def discover() -> None:
    """Import every module that registers families or kinds (this package's, plugins').

    The package and the entry points are scanned once; $LATENTSTUDIO_PLUGINS is read every time
    (cheap), so a plugin named after the first lookup is still found.
    """
    if "latentstudio.models:package" not in _imported:
        _imported.add("latentstudio.models:package")
        for info in pkgutil.iter_modules(__path__):
            if not info.name.startswith("_"):
                _import(f"{__name__}.{info.name}")
        for ep in entry_points(group="latentstudio.models"):
            ep.load()
    for name in os.environ.get("LATENTSTUDIO_PLUGINS", "").split(","):
        if name.strip():
            _import(name.strip())


def get_family(name: str) -> Family:
    """The family registered as `name`, or a UserError listing the valid names."""
    discover()
    if name not in FAMILIES:
        raise UserError(f"unknown model {name!r}; choose one of: {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def all_families() -> list[Family]:
    """Every registered family, by kind then name."""
    discover()
    return sorted(FAMILIES.values(), key=lambda f: (f.kind, f.name))


def get_kind(name: str) -> Kind:
    """The kind registered as `name`."""
    discover()
    if name not in KINDS:
        raise UserError(f"unknown model kind {name!r}; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation (Radford et al. 2015): conv weights N(0, 0.02), norm scales N(1, 0.02)."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm2d, nn.BatchNorm1d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
